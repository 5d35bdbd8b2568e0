//! The generated code: the impl block as written, plus one
//! `impl ::wsroute::__private::Route<S> for T` forwarding each event to it,
//! and a check that `T` is `Send`.
//!
//! Generated code names only `::wsroute::__private::…` and `::core::…`, so
//! it works whatever the user's module imports or shadows. Calls that take
//! the user's types are spanned at those types, and each event's return
//! type at the event's name, so rustc's type errors point at them.

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

/// The state type of the router the route mounts on: `state = X` if
/// given, else `X` if `accept` takes `State<X>` (as axum-macros'
/// `debug_handler` infers it), else any `__S`.
struct RouterState {
    generics: TokenStream,
    ty: TokenStream,
    /// The bound on `__S`, when generic.
    bound: Option<TokenStream>,
}

impl RouterState {
    fn infer(args: &RouteArgs, route: &RouteImpl) -> RouterState {
        let inferred = || {
            route
                .handler(Event::Accept)
                .and_then(|accept| accept.params().find_map(|p| state_extractor(&p.ty)))
        };
        match args.state.as_ref().or_else(inferred) {
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
/// does not fail the impl and each event; it fails where the route is
/// mounted, and [`state_is_send`] reports it on the self type whether or
/// not it is mounted. `for<'__a>` keeps rustc from rejecting the bound at
/// the definition as a "trivial bound" (one about a concrete type).
pub(crate) fn send_bound() -> TokenStream {
    quote!(for<'__a> Self: ::wsroute::__private::Send)
}

/// `X` in axum's `State<X>`, written `State<X>` or `axum::extract::State<X>`
/// (wsroute does not re-export it). Any other path ending in `State` is
/// the user's own extractor (`my::State<u32>`), extracted as any other.
fn state_extractor(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let segments: Vec<_> = path.path.segments.iter().collect();
    let (last, prefix) = segments.split_last()?;
    let names: Vec<String> = prefix.iter().map(|s| s.ident.to_string()).collect();
    let axums = match &names[..] {
        [] => path.path.leading_colon.is_none(),
        [krate, module] => krate == "axum" && module == "extract",
        _ => false,
    };
    if !axums || prefix.iter().any(|s| !s.arguments.is_none()) {
        return None;
    }
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
    } = RouterState::infer(args, route);
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
    let compression = match &args.compression {
        Some(on) => quote_spanned!(on.span=> ::core::option::Option::Some(#on)),
        None => quote!(::core::option::Option::None),
    };
    let accept = accept(route, &state);
    let has_error = route.handler(Event::Error).is_some();
    let open = forwards(route, Event::Open, open);
    let message = forwards(route, Event::Message, |m| message(m, has_error, &state));
    let error = forwards(route, Event::Error, error);
    let close = forwards(route, Event::Close, close);
    let state_is_send = state_is_send(self_ty);
    let shadows = shadow_locals(route);
    quote! {
        #item

        const _: () = {
        #shadows

        #[automatically_derived]
        impl #generics ::wsroute::__private::Route<#state> for #self_ty
        where
            #send,
            #bound
        {
            const PATH: &'static ::core::primitive::str = #path;
            const MAX_PAYLOAD: ::core::option::Option<::core::primitive::u64> = #max_payload;
            const ORIGINS: ::core::option::Option<&'static [&'static ::core::primitive::str]> = #origins;
            const COMPRESSION: ::core::option::Option<::core::primitive::bool> = #compression;

            #accept
            #open
            #message
            #error
            #close
        }
        };

        #state_is_send
    }
}

/// The impl's `Send` bound (see [`send_bound`]) fails only where the route
/// is mounted; this reports a state that is not `Send` on the impl's self
/// type, mounted or not. Naming the function is enough for rustc to check
/// its bound; it is never called. The block refuses generics, so the self
/// type is concrete here.
fn state_is_send(self_ty: &Type) -> TokenStream {
    let check = quote_spanned! {self_ty.span()=>
        let _ = route_state_must_be_send::<#self_ty>;
    };
    quote! {
        const _: () = {
            fn route_state_must_be_send<
                T: ?::core::marker::Sized + ::wsroute::__private::StateIsSend,
            >() {
            }
            #check
        };
    }
}

/// The macro's own names, resolved where the macro writes them: a user's
/// item of the same name (`const __conn: u8`) cannot capture them.
fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// Hygiene does not stop a binding from being read as a constant or unit
/// struct of the same name in scope (E0530): a user's `const __conn: u8`
/// would turn the generated `__conn: &Connection` into a pattern. Functions
/// of those names, declared around the impl, hide any such item from it.
fn shadow_locals(route: &RouteImpl) -> TokenStream {
    let extracted = route
        .handlers(Event::Accept)
        .iter()
        .map(|accept| accept.params().count())
        .max()
        .unwrap_or(0);
    let names = LOCALS
        .iter()
        .map(|name| local(name))
        .chain((0..extracted).map(|i| local(&format!("__arg{i}"))));
    quote! {
        #(
            #[allow(dead_code, non_snake_case)]
            fn #names() {}
        )*
    }
}

/// The macro's locals other than the extracted arguments `__arg0`, ….
const LOCALS: &[&str] = &[
    "__request",
    "__state",
    "__value",
    "__rejection",
    CONN,
    "__msg",
    "__error",
    "__reason",
    "__arg",
];

/// Each method of `event`, forwarded, under the method's own `cfg`: a
/// method compiled out leaves the trait's default, as if it were absent,
/// instead of a forward to a method that does not exist (which would
/// find the trait's own and recurse).
fn forwards(
    route: &RouteImpl,
    event: Event,
    forward: impl Fn(&Method) -> TokenStream,
) -> TokenStream {
    route
        .handlers(event)
        .into_iter()
        .map(|method| {
            let cfg = method.cfg.as_ref().map(|p| quote!(#[cfg(#p)]));
            let forward = forward(method);
            quote!(#cfg #forward)
        })
        .collect()
}

/// Runs each argument's extractor in order, then the user's `accept`; or,
/// without one (or with each compiled out), `Self::default()`.
fn accept(route: &RouteImpl, state: &TokenStream) -> TokenStream {
    let request = local("__request");
    let state_arg = local("__state");
    let accepts = forwards(route, Event::Accept, |accept| {
        let (names, extractions): (Vec<_>, Vec<_>) = accept
            .params()
            .enumerate()
            .map(|(i, param)| {
                let name = local(&format!("__arg{i}"));
                (name.clone(), extraction(&name, &param.ty, state))
            })
            .unzip();
        let call = forward(accept, false, &names);
        // Spanned at the return type: if it is not an outcome, E0277
        // underlines it.
        let outcome = match &accept.sig.output {
            ReturnType::Type(_, ty) => quote_spanned! {ty.span()=>
                <#ty as ::wsroute::__private::AcceptOutcome<Self>>::into_outcome(#call)
            },
            // `validate` refuses an `accept` without a return type.
            ReturnType::Default => quote!(#call),
        };
        // Spanned at `accept` for the reason given at `body`.
        let output = quote_spanned! {accept.sig.ident.span()=>
            -> ::core::result::Result<Self, ::wsroute::__private::Response>
        };
        quote! {
            async fn accept(
                #request: &mut ::wsroute::__private::Parts,
                #state_arg: &#state,
            ) #output {
                #(#extractions)*
                #outcome
            }
        }
    });
    let handlers = route.handlers(Event::Accept);
    let conditions: Option<Vec<&TokenStream>> = handlers.iter().map(|m| m.cfg.as_ref()).collect();
    let default_cfg = match conditions {
        Some(conditions) if conditions.is_empty() => None,
        Some(conditions) => Some(quote!(#[cfg(not(any(#(#conditions),*)))])),
        // One `accept` is always there: no default.
        None => return accepts,
    };
    let self_ty = &route.item.self_ty;
    let default = quote_spanned! {self_ty.span()=>
        ::core::result::Result::Ok(<Self as ::core::default::Default>::default())
    };
    quote! {
        #accepts
        #default_cfg
        async fn accept(
            _: &mut ::wsroute::__private::Parts,
            _: &#state,
        ) -> ::core::result::Result<Self, ::wsroute::__private::Response> {
            #default
        }
    }
}

/// `let name = …;` for one argument of `accept`, returning its rejection.
/// `State<X>` is built as axum's extractor builds it, but through
/// `SubState`, whose error says what `X` must be (the bare `FromRef` error
/// does not); `State` of the router's own state is a clone, so that a
/// missing `Clone` is reported as such. Anything else is extracted through
/// axum's `FromRequestParts`, named directly so rustc's notes name it.
fn extraction(name: &Ident, ty: &Type, state: &TokenStream) -> TokenStream {
    // Shown at the type, so rustc's "required by this call" is there.
    let at_ty = |name: &str| Ident::new(name, Span::mixed_site().located_at(ty.span()));
    let (request, state_arg) = (at_ty("__request"), at_ty("__state"));
    if let Some(sub) = state_extractor(ty) {
        let value = if sub.to_token_stream().to_string() == state.to_string() {
            quote_spanned!(ty.span()=> <#sub as ::core::clone::Clone>::clone(#state_arg))
        } else {
            quote_spanned! {ty.span()=>
                <#sub as ::wsroute::__private::SubState<#state>>::from_state(#state_arg)
            }
        };
        return quote!(let #name = ::wsroute::__private::State(#value););
    }
    let extract = quote_spanned! {ty.span()=>
        <#ty as ::wsroute::__private::FromRequestParts<#state>>::from_request_parts(
            #request, #state_arg,
        )
        .await
    };
    let value = local("__value");
    let rejection = local("__rejection");
    quote! {
        let #name = match #extract {
            ::core::result::Result::Ok(#value) => #value,
            ::core::result::Result::Err(#rejection) => {
                return ::core::result::Result::Err(
                    ::wsroute::__private::IntoResponse::into_response(#rejection),
                );
            }
        };
    }
}

/// The generated method's return type and body, spanned at the user's
/// method name: rustc reports a future that is not `Send` at the return
/// type, so the error lands on the name of the event that holds the value.
fn body(method: &Method, statements: TokenStream) -> TokenStream {
    quote_spanned!(method.sig.ident.span()=> -> () { #statements })
}

fn open(open: &Method) -> TokenStream {
    let call = forward(open, true, &user_args(open, &[CONN]));
    let body = body(open, call);
    let conn = local(CONN);
    quote! {
        async fn open(&mut self, #conn: &::wsroute::__private::Connection) #body
    }
}

/// Converts the message to the user's type; one that does not convert goes
/// to this route's `error` event (a no-op without one).
fn message(message: &Method, has_error: bool, state: &TokenStream) -> TokenStream {
    let conn = local(CONN);
    let msg = local("__msg");
    let error = local("__error");
    let mut args = user_args(message, &[CONN]);
    // Already of the user's type: `from_message` converted it.
    args.push(quote!(#msg));
    let call = forward(message, true, &args);
    let msg_ty = message
        .params()
        .nth(1)
        .map(|p| &*p.ty)
        .expect("checked: `message` has two parameters");
    let convert = quote_spanned! {msg_ty.span()=>
        <#msg_ty as ::wsroute::__private::FromMessage>::from_message(#msg)
    };
    // The trait's `error`, whose future is declared `Send`: an `error`
    // event whose future is not `Send` is then reported once, on `error`,
    // and not again on `message`. It is also the default when `error` is
    // compiled out.
    let on_error = match has_error {
        true => quote! {
            ::core::result::Result::Err(ref #error) => {
                <Self as ::wsroute::__private::Route<#state>>::error(self, #conn, #error).await
            }
        },
        false => quote!(::core::result::Result::Err(_) => {}),
    };
    let body = body(
        message,
        quote! {
            match #convert {
                ::core::result::Result::Ok(#msg) => #call,
                #on_error
            }
        },
    );
    quote! {
        async fn message(
            &mut self,
            #conn: &::wsroute::__private::Connection,
            #msg: ::wsroute::__private::Message,
        ) #body
    }
}

fn error(error: &Method) -> TokenStream {
    let call = forward(error, true, &user_args(error, &[CONN, "__error"]));
    let body = body(error, call);
    let (conn, err) = (local(CONN), local("__error"));
    quote! {
        async fn error(
            &mut self,
            #conn: &::wsroute::__private::Connection,
            #err: &::wsroute::__private::Error,
        ) #body
    }
}

fn close(close: &Method) -> TokenStream {
    let call = forward(close, true, &user_args(close, &[CONN, "__reason"]));
    let body = body(close, call);
    let (conn, reason) = (local(CONN), local("__reason"));
    quote! {
        async fn close(
            &mut self,
            #conn: &::wsroute::__private::Connection,
            #reason: ::wsroute::__private::CloseReason,
        ) #body
    }
}

/// The generated method's arguments, by name, each bound to the user's
/// parameter type by a `let` spanned at that type: a mismatch is a plain
/// "expected `&Connection`, found `Connection`" there. (`validate` names
/// the fix first for the usual slips.)
fn user_args(method: &Method, names: &[&str]) -> Vec<TokenStream> {
    names
        .iter()
        .zip(method.params())
        .map(|(name, param)| {
            let ty = &param.ty;
            // Shown at the type, resolved where the macro defines it.
            let name = Ident::new(name, Span::mixed_site().located_at(ty.span()));
            let arg = Ident::new("__arg", Span::mixed_site().located_at(ty.span()));
            quote_spanned! {ty.span()=>
                {
                    let #arg: #ty = #name;
                    #arg
                }
            }
        })
        .collect()
}

const CONN: &str = "__conn";

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
        assert!(
            out.contains("< Query < Q > as :: wsroute :: __private :: FromRequestParts < App >>"),
            "{out}"
        );
        assert!(
            out.contains("State (< App as :: core :: clone :: Clone > :: clone (__state))"),
            "{out}"
        );
    }

    #[test]
    fn implements_the_given_state_and_takes_sub_states_from_it() {
        let out = expand(
            quote!("/chat", state = App),
            quote! {
                impl Chat {
                    fn accept(State(db): State<Db>) -> Option<Self> { None }
                }
            },
        );
        assert!(out.contains("Route < App > for Chat"), "{out}");
        assert!(
            out.contains("< Db as :: wsroute :: __private :: SubState < App >> :: from_state"),
            "{out}"
        );
    }

    #[test]
    fn builds_a_default_state_without_accept() {
        let out = expand(quote!("/"), quote!(impl Echo {}));
        assert!(
            out.contains("Ok (< Self as :: core :: default :: Default > :: default ())"),
            "{out}"
        );
    }

    #[test]
    fn marks_the_impl_and_checks_the_state_is_send() {
        let out = expand(quote!("/"), quote!(impl Echo {}));
        assert!(out.contains("# [automatically_derived] impl"), "{out}");
        assert!(
            out.contains("route_state_must_be_send :: < Echo > ;"),
            "{out}"
        );
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
