//! The generated code: the impl block as written, plus one
//! `impl ::wsroute::__private::Route<S> for T` forwarding each event to it.
//!
//! Generated code names only `::wsroute::__private::…` and `::core::…`, so
//! it works whatever the user's module imports or shadows. Calls that take
//! the user's types are spanned at those types, so rustc's type errors
//! point at them.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericArgument, LitInt, PathArguments, ReturnType, Type};

use crate::args::{self, MaxPayload, OriginList, RouteArgs};
use crate::errors::Errors;
use crate::model::{Event, Method, RouteImpl};
use crate::{fallback, validate};

/// The attribute: parses, checks, expands; on any mistake, the block as
/// written and every error, and nothing that could add more errors.
pub(crate) fn websocket_route(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = args::parse(args);
    let route = RouteImpl::parse(item.clone());
    let checked = route
        .as_ref()
        .map_err(Clone::clone)
        .and_then(validate::check);
    match (args, route, checked) {
        (Ok(args), Ok(route), Ok(())) => route_impl(&args, &route),
        (args, route, checked) => {
            let mut errors = Errors::default();
            errors.take(args);
            errors.take(checked);
            let errors = errors.finish().err().map(|e| e.to_compile_error());
            match route {
                Ok(route) => fallback::route_impl(&route, errors),
                Err(_) => quote!(#item #errors),
            }
        }
    }
}

/// The state type of the router the route mounts on: `X` if `accept`
/// takes `State<X>` (as axum-macros' `debug_handler` infers it), else any
/// `__S`.
struct RouterState {
    generics: TokenStream,
    ty: TokenStream,
    /// The bound on `__S`, when generic.
    bound: Option<TokenStream>,
}

impl RouterState {
    fn infer(route: &RouteImpl) -> RouterState {
        let state = route
            .handler(Event::Accept)
            .and_then(|accept| accept.params().find_map(|p| state_extractor(&p.ty)));
        match state {
            Some(ty) => RouterState {
                generics: TokenStream::new(),
                ty: ty.to_token_stream(),
                bound: None,
            },
            None => RouterState::any(),
        }
    }

    fn any() -> RouterState {
        RouterState {
            generics: quote!(<__S>),
            ty: quote!(__S),
            bound: Some(quote! {
                __S: ::wsroute::__private::Send + ::wsroute::__private::Sync + 'static
            }),
        }
    }
}

/// `Route` needs a `Send` state, and each event's future is `Send` only if
/// the state is. Stated as a bound of the impl, a state that is not `Send`
/// fails once, where the route is mounted ("required for `Chat` to
/// implement `Route`"), instead of once for the impl and once per event.
/// `for<'__a>` keeps rustc from rejecting it at the definition as a
/// "trivial bound" (one about a concrete type).
pub(crate) fn send_bound() -> TokenStream {
    quote!(for<'__a> Self: ::wsroute::__private::Send)
}

/// `X` in `State<X>` (however the path to `State` is written).
fn state_extractor(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first() {
        Some(GenericArgument::Type(state)) if last.ident == "State" && args.args.len() == 1 => {
            Some(state)
        }
        _ => None,
    }
}

fn route_impl(args: &RouteArgs, route: &RouteImpl) -> TokenStream {
    let item = &route.item;
    let self_ty = &item.self_ty;
    let RouterState {
        generics,
        ty: state,
        bound,
    } = RouterState::infer(route);
    let send = send_bound();
    let path = &args.path;
    let max_payload = match &args.max_payload {
        Some(MaxPayload { key, bytes }) => {
            let bytes = LitInt::new(&format!("{bytes}u64"), key.span);
            quote!(::core::option::Option::Some(#bytes))
        }
        None => quote!(::core::option::Option::None),
    };
    let origins = match &args.origins {
        Some(OriginList { key, origins }) => {
            quote_spanned!(key.span=> ::core::option::Option::Some(&[#(#origins),*]))
        }
        None => quote!(::core::option::Option::None),
    };
    let accept = accept(route, &state);
    let open = route.handler(Event::Open).map(open);
    let message = route
        .handler(Event::Message)
        .map(|m| message(m, route.handler(Event::Error)));
    let error = route.handler(Event::Error).map(error);
    let close = route.handler(Event::Close).map(close);
    quote! {
        #item

        impl #generics ::wsroute::__private::Route<#state> for #self_ty
        where
            #send,
            #bound
        {
            const PATH: &'static ::core::primitive::str = #path;
            const MAX_PAYLOAD: ::core::option::Option<::core::primitive::u64> = #max_payload;
            const ORIGINS: ::core::option::Option<&'static [&'static ::core::primitive::str]> = #origins;

            #accept
            #open
            #message
            #error
            #close
        }
    }
}

/// Runs each argument's extractor in order, then the user's `accept`.
fn accept(route: &RouteImpl, state: &TokenStream) -> TokenStream {
    let body = match route.handler(Event::Accept) {
        Some(accept) => {
            let (names, extractions): (Vec<_>, Vec<_>) = accept
                .params()
                .enumerate()
                .map(|(i, param)| {
                    let ty = &param.ty;
                    let name = Ident::new(&format!("__arg{i}"), Span::call_site());
                    let extract = quote_spanned! {ty.span()=>
                        ::wsroute::__private::extract::<#ty, #state>(__request, __state).await
                    };
                    let extraction = quote! {
                        let #name = match #extract {
                            ::core::result::Result::Ok(value) => value,
                            ::core::result::Result::Err(response) => {
                                return ::core::result::Result::Err(response);
                            }
                        };
                    };
                    (name, extraction)
                })
                .unzip();
            let call = forward(accept, false, &names);
            // The return type as a turbofish argument: if it is not an
            // outcome, E0277 underlines it.
            let outcome = match &accept.sig.output {
                ReturnType::Type(_, ty) => quote_spanned! {ty.span()=>
                    ::wsroute::__private::accept_outcome::<Self, #ty>(#call)
                },
                ReturnType::Default => unreachable!("checked: `accept` returns a value"),
            };
            quote!(#(#extractions)* #outcome)
        }
        None => {
            let self_ty = &route.item.self_ty;
            quote_spanned!(self_ty.span()=> ::wsroute::__private::default_state::<Self>())
        }
    };
    quote! {
        async fn accept(
            __request: &mut ::wsroute::__private::Parts,
            __state: &#state,
        ) -> ::core::result::Result<Self, ::wsroute::__private::Response> {
            #body
        }
    }
}

fn open(open: &Method) -> TokenStream {
    let call = forward(open, true, &user_args(open, &[conn()]));
    quote! {
        async fn open(&mut self, __conn: &::wsroute::__private::Connection) {
            #call
        }
    }
}

/// Converts the message to the user's type; one that does not convert goes
/// to this route's `error` event (a no-op without one).
fn message(message: &Method, error: Option<&Method>) -> TokenStream {
    let mut args = user_args(message, &[conn()]);
    // Already of the user's type: `from_message` converted it.
    args.push(quote!(__msg));
    let call = forward(message, true, &args);
    let msg_ty = message
        .params()
        .nth(1)
        .map(|p| &*p.ty)
        .expect("checked: `message` has two parameters");
    let convert = quote_spanned! {msg_ty.span()=>
        ::wsroute::__private::from_message::<#msg_ty>(__msg)
    };
    // The user's method, not `<Self as Route<_>>::error`: the impl's
    // `Send` bound then stays the only place a non-`Send` state fails.
    let on_error = match error {
        Some(error) => {
            let call = forward(error, true, &user_args(error, &error_args()));
            quote!(::core::result::Result::Err(ref __error) => #call,)
        }
        None => quote!(::core::result::Result::Err(_) => {}),
    };
    quote! {
        async fn message(
            &mut self,
            __conn: &::wsroute::__private::Connection,
            __msg: ::wsroute::__private::Message,
        ) {
            match #convert {
                ::core::result::Result::Ok(__msg) => #call,
                #on_error
            }
        }
    }
}

fn error_args() -> [(&'static str, TokenStream); 2] {
    [conn(), ("__error", quote!(&::wsroute::__private::Error))]
}

fn error(error: &Method) -> TokenStream {
    let call = forward(error, true, &user_args(error, &error_args()));
    quote! {
        async fn error(
            &mut self,
            __conn: &::wsroute::__private::Connection,
            __error: &::wsroute::__private::Error,
        ) {
            #call
        }
    }
}

fn close(close: &Method) -> TokenStream {
    let reason = ("__reason", quote!(::wsroute::__private::CloseReason));
    let call = forward(close, true, &user_args(close, &[conn(), reason]));
    quote! {
        async fn close(
            &mut self,
            __conn: &::wsroute::__private::Connection,
            __reason: ::wsroute::__private::CloseReason,
        ) {
            #call
        }
    }
}

/// The generated method's arguments, each `(name, type it has)`, passed
/// through `event_arg::<UserType, Type>` spanned at the user's parameter
/// type, so a mismatch is reported there.
fn user_args(method: &Method, args: &[(&str, TokenStream)]) -> Vec<TokenStream> {
    args.iter()
        .zip(method.params())
        .map(|((name, expected), param)| {
            let name = Ident::new(name, Span::call_site());
            let ty = &param.ty;
            quote_spanned! {ty.span()=>
                ::wsroute::__private::event_arg::<#ty, #expected>(#name)
            }
        })
        .collect()
}

fn conn() -> (&'static str, TokenStream) {
    ("__conn", quote!(&::wsroute::__private::Connection))
}

/// `Self::event(self, args…)`, awaited if the user's method is `async`.
/// `Self::name` finds the inherent method before the trait's.
fn forward(method: &Method, receiver: bool, args: &[impl ToTokens]) -> TokenStream {
    let name = &method.sig.ident;
    let receiver = receiver.then(|| quote!(self,));
    let call = quote_spanned!(name.span()=> Self::#name(#receiver #(#args),*));
    match method.is_async() {
        true => quote!(#call.await),
        false => call,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        websocket_route(args, item).to_string()
    }

    #[test]
    fn forwards_each_event_the_block_has() {
        let out = expand(
            quote!(
                "/echo",
                max_payload = 65536,
                origins = ["https://a.example"]
            ),
            quote! {
                impl Echo {
                    fn accept() -> Option<Self> { Some(Echo) }
                    async fn message(&mut self, conn: &Connection, msg: Message) {}
                    fn close(&mut self, conn: &Connection, reason: CloseReason) {}
                }
            },
        );
        assert!(out.contains("impl < __S > :: wsroute :: __private :: Route < __S > for Echo"));
        assert!(out.contains("Some (65536u64)"), "{out}");
        assert!(out.contains("const ORIGINS"), "{out}");
        assert!(out.contains("Self :: message (self ,"), "{out}");
        assert!(out.contains(". await"), "{out}");
        assert!(!out.contains("async fn open"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn implements_the_state_of_a_state_extractor() {
        let out = expand(
            quote!("/chat"),
            quote! {
                impl Chat {
                    fn accept(q: Query<Q>, State(app): axum::extract::State<App>) -> Option<Self> { None }
                }
            },
        );
        assert!(
            out.contains(":: wsroute :: __private :: Route < App > for Chat"),
            "{out}"
        );
        assert!(out.contains("extract :: < Query < Q > , App >"), "{out}");
    }

    #[test]
    fn builds_a_default_state_without_accept() {
        let out = expand(quote!("/"), quote!(impl Echo {}));
        assert!(out.contains("default_state :: < Self > ()"), "{out}");
    }

    #[test]
    fn keeps_the_block_and_stubs_the_route_on_error() {
        let out = expand(
            quote!("ws"),
            quote! { impl Echo { fn mesage(&mut self) {} } },
        );
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
        assert!(
            out.contains("# [allow (dead_code)] impl Echo { fn mesage"),
            "{out}"
        );
        assert!(out.contains(":: core :: future :: pending ()"), "{out}");
    }

    #[test]
    fn re_emits_a_non_impl_item_with_its_error() {
        let out = expand(
            quote!("/ws"),
            quote!(
                struct Chat;
            ),
        );
        assert!(out.starts_with("struct Chat ;"), "{out}");
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(!out.contains("Route"), "{out}");
    }
}
