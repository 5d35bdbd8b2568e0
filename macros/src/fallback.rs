//! What the attribute emits after a mistake: the block as written, the
//! errors, and a `Route` impl that cannot fail, so that the user sees only
//! the mistake (not "`Chat` is not a `Route`" where it is mounted) and the
//! IDE keeps working.

use proc_macro2::TokenStream;
use quote::quote;

use crate::expand::send_bound;
use crate::model::RouteImpl;

/// The block's methods are not called, so `dead_code` is silenced. The
/// stub keeps the block's generics, and bounds itself by what `Route`
/// needs, so it is well-formed whatever the block says.
pub(crate) fn route_impl(route: &RouteImpl, errors: Option<TokenStream>) -> TokenStream {
    let item = &route.item;
    let self_ty = &item.self_ty;
    let mut generics = item.generics.clone();
    generics.params.push(syn::parse_quote!(__S));
    let send = send_bound();
    let predicates: [syn::WherePredicate; 3] = [
        syn::parse_quote!(#send),
        syn::parse_quote!(Self: 'static),
        syn::parse_quote!(__S: ::wsroute::__private::Send + ::wsroute::__private::Sync + 'static),
    ];
    generics.make_where_clause().predicates.extend(predicates);
    let (generics, _, bounds) = generics.split_for_impl();
    quote! {
        #[allow(dead_code)]
        #item
        #errors
        #[automatically_derived]
        impl #generics ::wsroute::__private::Route<__S> for #self_ty #bounds {
            const PATH: &'static ::core::primitive::str = "/";

            fn accept(
                _: &mut ::wsroute::__private::Parts,
                _: &__S,
            ) -> impl ::wsroute::__private::Future<
                Output = ::core::result::Result<Self, ::wsroute::__private::Response>,
            > + ::wsroute::__private::Send {
                ::core::future::pending()
            }
        }
    }
}
