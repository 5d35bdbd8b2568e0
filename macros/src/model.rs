//! The annotated item as a typed model: an inherent impl block whose
//! methods are the route's events.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::{
    Attribute, Error, FnArg, ImplItem, Item, ItemImpl, Meta, PatType, Receiver, Signature, Token,
    Type,
};

/// One of Crow's five events, in the order a connection meets them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Event {
    Accept,
    Open,
    Message,
    Error,
    Close,
}

impl Event {
    pub(crate) const ALL: [Event; 5] = [
        Event::Accept,
        Event::Open,
        Event::Message,
        Event::Error,
        Event::Close,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Event::Accept => "accept",
            Event::Open => "open",
            Event::Message => "message",
            Event::Error => "error",
            Event::Close => "close",
        }
    }

    fn from_name(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|event| event.name() == name)
    }

    /// The parameters after `&mut self`; `accept` takes any number of
    /// extractors and has no receiver.
    pub(crate) fn parameters(self) -> &'static [&'static str] {
        match self {
            Event::Accept => &[],
            Event::Open => &["conn: &Connection"],
            Event::Message => &["conn: &Connection", "msg: Message"],
            Event::Error => &["conn: &Connection", "err: &Error"],
            Event::Close => &["conn: &Connection", "reason: CloseReason"],
        }
    }

    /// The expected signature, for error messages.
    pub(crate) fn signature(self) -> String {
        match self {
            Event::Accept => "fn accept(/* extractors */) -> Option<Self>".to_owned(),
            _ => format!(
                "fn {}(&mut self, {})",
                self.name(),
                self.parameters().join(", ")
            ),
        }
    }
}

/// The impl block the attribute is on.
pub(crate) struct RouteImpl {
    /// As written: re-emitted unchanged.
    pub(crate) item: ItemImpl,
    /// Its methods, in order.
    pub(crate) methods: Vec<Method>,
    /// Whatever else it holds, refused by `validate`.
    pub(crate) others: Vec<ImplItem>,
}

/// A method of the block, and the event its name says it handles.
pub(crate) struct Method {
    pub(crate) event: Option<Event>,
    pub(crate) sig: Signature,
    /// When the method exists: its `#[cfg]`s and `#[cfg_attr(.., cfg(..))]`s
    /// as one predicate, `None` if it always does. Everything generated
    /// for the method carries it, so a method compiled out is absent.
    pub(crate) cfg: Option<TokenStream>,
}

impl RouteImpl {
    /// Accepts an inherent impl block; anything else is an error on the
    /// offending token.
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<RouteImpl> {
        let item: Item = syn::parse2(tokens)?;
        let item = match item {
            Item::Impl(item) => item,
            Item::Struct(s) => {
                return Err(not_an_impl(&s.struct_token, &s.ident, "a struct"));
            }
            Item::Enum(e) => return Err(not_an_impl(&e.enum_token, &e.ident, "an enum")),
            Item::Fn(f) => {
                let name = &f.sig.ident;
                let message = format!(
                    "`#[websocket_route]` goes on an inherent `impl` block, not on a function: make `{name}` a method of the state type, e.g. `impl Chat {{ fn {name}(&mut self, ...) }}`"
                );
                let fn_token = &f.sig.fn_token;
                return Err(Error::new_spanned(quote::quote!(#fn_token #name), message));
            }
            other => {
                let message = "`#[websocket_route]` goes on an inherent `impl` block of the state type, e.g. `impl Chat { ... }`";
                return Err(Error::new_spanned(other, message));
            }
        };
        if let Some((_, trait_path, _)) = &item.trait_ {
            let message = format!(
                "`#[websocket_route]` goes on an inherent impl, not a trait impl: write `impl {} {{ ... }}`",
                type_name(&item.self_ty)
            );
            return Err(Error::new_spanned(trait_path, message));
        }
        let methods = item
            .items
            .iter()
            .filter_map(|item| match item {
                ImplItem::Fn(f) => Some(Method {
                    event: Event::from_name(&f.sig.ident.unraw().to_string()),
                    sig: f.sig.clone(),
                    cfg: cfg_predicate(&f.attrs),
                }),
                _ => None,
            })
            .collect();
        let others = item
            .items
            .iter()
            .filter(|item| !matches!(item, ImplItem::Fn(_)))
            .cloned()
            .collect();
        Ok(RouteImpl {
            item,
            methods,
            others,
        })
    }

    /// The method handling `event`, if the block has one.
    pub(crate) fn handler(&self, event: Event) -> Option<&Method> {
        self.methods.iter().find(|m| m.event == Some(event))
    }

    /// The methods handling `event`: several only as alternatives under
    /// `#[cfg]`. After one without `cfg` the others could never compile
    /// alongside it (rustc reports the duplicate on the block), so they
    /// are left out rather than duplicated again in the generated impl.
    pub(crate) fn handlers(&self, event: Event) -> Vec<&Method> {
        let mut found = Vec::new();
        for method in self.methods.iter().filter(|m| m.event == Some(event)) {
            found.push(method);
            if method.cfg.is_none() {
                break;
            }
        }
        found
    }
}

impl Method {
    pub(crate) fn receiver(&self) -> Option<&Receiver> {
        self.sig.receiver()
    }

    /// The parameters other than `self`.
    pub(crate) fn params(&self) -> impl Iterator<Item = &PatType> {
        self.sig.inputs.iter().filter_map(|arg| match arg {
            FnArg::Typed(param) => Some(param),
            FnArg::Receiver(_) => None,
        })
    }

    pub(crate) fn is_async(&self) -> bool {
        self.sig.asyncness.is_some()
    }
}

/// The condition under which an item with these attributes is compiled:
/// `#[cfg(p)]` is `p`, and `#[cfg_attr(q, cfg(p))]` is `any(not(q), p)`.
/// Only the `cfg` inside a `cfg_attr` matters here; its other attributes
/// belong to the user's method, not to the generated one.
fn cfg_predicate(attrs: &[Attribute]) -> Option<TokenStream> {
    let predicates: Vec<TokenStream> = attrs.iter().filter_map(|a| meta_cfg(&a.meta)).collect();
    match &predicates[..] {
        [] => None,
        [one] => Some(one.clone()),
        all => Some(quote!(all(#(#all),*))),
    }
}

fn meta_cfg(meta: &Meta) -> Option<TokenStream> {
    let Meta::List(list) = meta else { return None };
    if list.path.is_ident("cfg") {
        return Some(list.tokens.clone());
    }
    if !list.path.is_ident("cfg_attr") {
        return None;
    }
    // Malformed, rustc reports it on the user's method.
    let parts = list
        .parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        .ok()?;
    let mut parts = parts.into_iter();
    let condition = parts.next()?;
    let inner: Vec<TokenStream> = parts.filter_map(|m| meta_cfg(&m)).collect();
    if inner.is_empty() {
        return None;
    }
    Some(quote!(any(not(#condition), all(#(#inner),*))))
}

/// `Chat` for `impl Chat`, to quote it back in messages.
pub(crate) fn type_name(ty: &Type) -> String {
    ty.to_token_stream()
        .to_string()
        .replace(" < ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
}

fn not_an_impl(keyword: &dyn ToTokens, name: &syn::Ident, what: &str) -> Error {
    let message = format!(
        "`#[websocket_route]` goes on an inherent `impl` block, not on {what}: put it on `impl {name} {{ ... }}`"
    );
    Error::new_spanned(quote::quote!(#keyword #name), message)
}
