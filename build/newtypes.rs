//! String newtypes read without a second copy.
//!
//! typify's newtype of a constrained string (a `pattern`, a length bound) reads a `String`,
//! then parses it with `FromStr`, which checks the constraints on the `&str` and copies it into
//! the newtype: two allocations and two copies for one value. Here each such `FromStr` is split
//! into its checks (`check_str`, the generated statements moved as they are) and the copy, and
//! `Deserialize` and `TryFrom<String>` check the `String` they have and keep it. What is
//! accepted, and every error message, is the same as typify generates.

use quote::quote;

/// Rewrites every string newtype of `file`; returns how many were rewritten.
pub fn rewrite(file: &mut syn::File) -> usize {
    let mut names = Vec::new();
    let mut checks = Vec::new();
    for item in &mut file.items {
        let Some((name, check)) = split_from_str(item) else {
            continue;
        };
        names.push(name.clone());
        checks.push(check);
    }
    for item in &mut file.items {
        let syn::Item::Impl(imp) = item else { continue };
        let Some(name) = self_name(imp) else { continue };
        if !names.contains(&name) {
            continue;
        }
        let trait_name = trait_name(imp);
        let Some(syn::ImplItem::Fn(f)) = imp
            .items
            .iter_mut()
            .find(|i| matches!(i, syn::ImplItem::Fn(_)))
        else {
            continue;
        };
        let body = quote!(#f).to_string();
        match trait_name.as_deref() {
            Some("Deserialize") => {
                assert!(
                    body.contains("String :: deserialize (deserializer) ? . parse ()"),
                    "typify's newtype Deserialize changed shape: update build/newtypes.rs"
                );
                f.block = syn::parse_quote!({
                    let value = ::std::string::String::deserialize(deserializer)?;
                    Self::check_str(&value).map_err(|e: self::error::ConversionError| {
                        <D::Error as ::serde::de::Error>::custom(e.to_string())
                    })?;
                    Ok(Self(value))
                });
            }
            Some("TryFrom") if body.contains("value : :: std :: string :: String") => {
                f.block = syn::parse_quote!({
                    Self::check_str(&value)?;
                    Ok(Self(value))
                });
            }
            _ => {}
        }
    }
    let count = checks.len();
    file.items.extend(checks);
    count
}

/// For `impl FromStr for X` ending `Ok(Self(value.to_string()))`: makes its body
/// `Self::check_str(value)?` and the copy, and returns `X` and `impl X { fn check_str }` holding
/// the statements before the copy.
fn split_from_str(item: &mut syn::Item) -> Option<(String, syn::Item)> {
    let syn::Item::Impl(imp) = item else {
        return None;
    };
    if trait_name(imp).as_deref() != Some("FromStr") {
        return None;
    }
    let name = self_name(imp)?;
    let f = imp.items.iter_mut().find_map(|i| match i {
        syn::ImplItem::Fn(f) if f.sig.ident == "from_str" => Some(f),
        _ => None,
    })?;
    let last = f.block.stmts.last()?;
    if quote!(#last).to_string() != "Ok (Self (value . to_string ()))" {
        return None;
    }
    let mut stmts = f.block.stmts.clone();
    stmts.pop();
    let ty: syn::Ident = syn::parse_str(&name).ok()?;
    f.block = syn::parse_quote!({
        Self::check_str(value)?;
        Ok(Self(value.to_string()))
    });
    let check = syn::parse_quote! {
        impl #ty {
            /// The schema's constraints on the value (as generated for `FromStr`).
            fn check_str(value: &str) -> ::std::result::Result<(), self::error::ConversionError> {
                #(#stmts)*
                Ok(())
            }
        }
    };
    Some((name, check))
}

fn self_name(imp: &syn::ItemImpl) -> Option<String> {
    match &*imp.self_ty {
        syn::Type::Path(p) => Some(p.path.segments.last()?.ident.to_string()),
        _ => None,
    }
}

fn trait_name(imp: &syn::ItemImpl) -> Option<String> {
    let path = &imp.trait_.as_ref()?.0;
    Some(path.segments.last()?.ident.to_string())
}
