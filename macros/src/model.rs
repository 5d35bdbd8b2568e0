//! The annotated item as a typed model: an inherent impl block whose
//! methods are the route's events.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Error, FnArg, ImplItem, Item, ItemImpl, PatType, Receiver, Signature, Type};

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
}

/// A method of the block, and the event its name says it handles.
pub(crate) struct Method {
    pub(crate) event: Option<Event>,
    pub(crate) sig: Signature,
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
                    event: Event::from_name(&f.sig.ident.to_string()),
                    sig: f.sig.clone(),
                }),
                _ => None,
            })
            .collect();
        Ok(RouteImpl { item, methods })
    }

    /// The method handling `event`, if the block has one.
    pub(crate) fn handler(&self, event: Event) -> Option<&Method> {
        self.methods.iter().find(|m| m.event == Some(event))
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
