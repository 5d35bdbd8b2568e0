//! What the model must satisfy before it is expanded: event names, receivers,
//! parameter counts, no generics. Parameter *types* are left to rustc: the
//! expansion puts its type errors under the user's types.

use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{
    Error, GenericArgument, GenericParam, ImplItem, PatType, Path, PathArguments, ReturnType, Type,
};

use crate::errors::Errors;
use crate::model::{Event, Method, RouteImpl, type_name};
use crate::suggest;

/// Checks everything, and reports every mistake together.
pub(crate) fn check(route: &RouteImpl) -> syn::Result<()> {
    let mut errors = Errors::default();
    let item = &route.item;
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        let message = "generic impl blocks are not supported: a route has one concrete state type; write the impl for concrete types, without `<...>` after `impl`";
        let generics = &item.generics;
        match &generics.where_clause {
            Some(bounds) if generics.params.is_empty() => {
                errors.push(Error::new_spanned(bounds, message));
            }
            _ => errors.push(Error::new_spanned(generics, message)),
        }
    }
    for other in &route.others {
        errors.push(other_item(other, &item.self_ty));
    }
    for method in &route.methods {
        match method.event {
            Some(event) => {
                errors.take(check_event(event, method));
            }
            None => errors.push(unknown_event(method, &item.self_ty)),
        }
    }
    errors.finish()
}

/// The block is the route's events; a `const` or `type` there would look
/// like a setting (`const MAX_PAYLOAD`) and be ignored.
fn other_item(item: &ImplItem, self_ty: &Type) -> Error {
    let what = match item {
        ImplItem::Const(_) => "constants",
        ImplItem::Type(_) => "associated types",
        ImplItem::Macro(_) => "macro calls",
        _ => "items other than events",
    };
    let message = format!(
        "the route block holds events only: {what} go in a separate `impl {} {{ ... }}` block without the attribute (route settings are the attribute's arguments, e.g. `max_payload = 65536`)",
        type_name(self_ty)
    );
    Error::new_spanned(item, message)
}

fn unknown_event(method: &Method, self_ty: &Type) -> Error {
    let name = method.sig.ident.unraw().to_string();
    let names: Vec<&str> = Event::ALL.iter().map(|e| e.name()).collect();
    let helpers = format!(
        "helper methods go in a separate `impl {} {{ ... }}` block without the attribute",
        type_name(self_ty)
    );
    let message = match suggest::nearest(&name, &names) {
        Some(event) => format!("unknown event `{name}`, did you mean `{event}`? ({helpers})"),
        None => format!(
            "unknown event `{name}`: the events are `accept`, `open`, `message`, `error` and `close`; {helpers}"
        ),
    };
    Error::new_spanned(&method.sig.ident, message)
}

fn check_event(event: Event, method: &Method) -> syn::Result<()> {
    let sig = &method.sig;
    let mut errors = Errors::default();
    if let Some(unsafety) = &sig.unsafety {
        let message = format!("`{}` cannot be `unsafe`", event.name());
        errors.push(Error::new_spanned(unsafety, message));
    }
    if let Some(constness) = &sig.constness {
        let message = format!("`{}` cannot be `const`: remove `const`", event.name());
        errors.push(Error::new_spanned(constness, message));
    }
    if let Some(abi) = &sig.abi {
        let message = format!(
            "`{}` is called from Rust: remove `{}`",
            event.name(),
            abi.to_token_stream()
        );
        errors.push(Error::new_spanned(abi, message));
    }
    errors.take(check_generics(method));
    if event == Event::Accept {
        errors.take(check_accept(method));
    } else {
        errors.take(check_handler(event, method));
    }
    errors.finish()
}

/// The forwarding call cannot choose type parameters, and named lifetimes
/// would not exist in the generated impl.
fn check_generics(method: &Method) -> syn::Result<()> {
    let generics = &method.sig.generics;
    if generics.params.is_empty() {
        return Ok(());
    }
    let lifetimes_only = generics
        .params
        .iter()
        .all(|p| matches!(p, GenericParam::Lifetime(_)));
    if !lifetimes_only {
        return Err(Error::new_spanned(
            generics,
            "generic events are not supported: remove the parameters and name the types (the macro calls the event and cannot choose them)",
        ));
    }
    let written = generics
        .params
        .iter()
        .map(|p| p.to_token_stream().to_string().replace("' ", "'"))
        .collect::<Vec<_>>()
        .join(", ");
    let receiver = match method.receiver() {
        Some(r) if r.mutability.is_some() => " and write `&mut self`",
        Some(_) => " and write `&self`",
        None => "",
    };
    let message = format!("events take no lifetime parameters: remove `<{written}>`{receiver}");
    Err(Error::new_spanned(generics, message))
}

fn check_accept(method: &Method) -> syn::Result<()> {
    let mut errors = Errors::default();
    if let Some(receiver) = method.receiver() {
        errors.push(Error::new_spanned(
            receiver,
            "`accept` builds the state, so it takes no `self`: remove it; its arguments are extractors, e.g. `fn accept(req: Request) -> Option<Self>`",
        ));
    }
    for param in method.params() {
        if let Type::ImplTrait(ty) = &*param.ty {
            errors.push(Error::new_spanned(
                ty,
                "`impl Trait` arguments are not supported: name the extractor's type",
            ));
        }
    }
    if let Some(unit) = unit_refusal(&method.sig.output) {
        errors.push(Error::new_spanned(
            unit,
            "a refusal needs a status: return `Result<Self, StatusCode>` (e.g. `Err(StatusCode::FORBIDDEN)`) or `Option<Self>`",
        ));
    }
    if let ReturnType::Default = method.sig.output {
        errors.push(Error::new_spanned(
            &method.sig.ident,
            "`accept` must return the state or a refusal: `-> Option<Self>`, `-> Result<Self, E>`, or `-> bool` when the state is `Default`",
        ));
    }
    errors.finish()
}

/// The `()` of `-> Result<Self, ()>`: a `()` response is `200 OK`, so the
/// refusal would upgrade nothing and look like success.
fn unit_refusal(output: &ReturnType) -> Option<&Type> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let Type::Path(path) = &**ty else { return None };
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>()[..] {
        [_, GenericArgument::Type(error @ Type::Tuple(unit))]
            if last.ident == "Result" && unit.elems.is_empty() =>
        {
            Some(error)
        }
        _ => None,
    }
}

fn check_handler(event: Event, method: &Method) -> syn::Result<()> {
    let sig = &method.sig;
    let name = event.name();
    match method.receiver() {
        None => {
            let message = format!(
                "`{name}` needs `&mut self` or `&self` first: `{}`",
                event.signature()
            );
            return Err(Error::new(sig.paren_token.span.join(), message));
        }
        Some(receiver) if !matches!(*receiver.ty, Type::Reference(_)) => {
            return Err(Error::new(
                receiver.self_token.span,
                "take `&mut self` or `&self`: the runtime keeps the route's state, the events borrow it",
            ));
        }
        Some(_) => {}
    }
    let mut errors = Errors::default();
    let expected = event.parameters().len();
    let found = method.params().count();
    if found != expected {
        let message = format!(
            "`{name}` takes {expected} {} after `self`, not {found}: `{}`",
            if expected == 1 {
                "parameter"
            } else {
                "parameters"
            },
            event.signature()
        );
        errors.push(Error::new(sig.paren_token.span.join(), message));
    } else {
        for (param, expected) in method.params().zip(event.parameters()) {
            errors.take(check_param_type(event, param, expected));
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        let unit = matches!(&**ty, Type::Tuple(t) if t.elems.is_empty());
        if !unit {
            let message = format!("`{name}` returns nothing: remove `-> {}`", type_name(ty));
            errors.push(Error::new_spanned(ty, message));
        }
    }
    errors.finish()
}

/// The usual slips in an event's parameter types, with the fix: the events
/// pass `&Connection`, `&Error` and `CloseReason`. Only those names, bare or
/// as `wsroute::Name`, are recognised (`io::Error` is not ours); any other
/// wrong type is rustc's mismatch, under the type.
fn check_param_type(event: Event, param: &PatType, expected: &str) -> syn::Result<()> {
    let Some((_, expected_ty)) = expected.split_once(": ") else {
        return Ok(());
    };
    let by_ref = expected_ty.starts_with('&');
    let name = expected_ty.trim_start_matches('&');
    let pat = param.pat.to_token_stream().to_string();
    let event = event.name();
    let message = match &*param.ty {
        Type::Reference(r) if names(&r.elem, name) && !by_ref => format!(
            "`{event}` passes `{name}` here by value: write `{pat}: {}`",
            type_name(&r.elem)
        ),
        Type::Reference(r) if names(&r.elem, name) && r.mutability.is_some() => format!(
            "`{event}` passes `&{name}` here, a shared reference: write `{pat}: &{}`",
            type_name(&r.elem)
        ),
        ty if names(ty, name) && by_ref => format!(
            "`{event}` passes `&{name}` here: write `{pat}: &{}`",
            type_name(ty)
        ),
        _ => return Ok(()),
    };
    Err(Error::new_spanned(&param.ty, message))
}

/// `ty` is `name` or `wsroute::name`, without generics.
fn names(ty: &Type, name: &str) -> bool {
    let Type::Path(path) = ty else { return false };
    let Path { segments, .. } = &path.path;
    let idents: Vec<String> = segments.iter().map(|s| s.ident.to_string()).collect();
    path.qself.is_none()
        && segments.iter().all(|s| s.arguments.is_none())
        && match &idents[..] {
            [last] => last == name,
            [krate, last] => krate == "wsroute" && last == name,
            _ => false,
        }
}
