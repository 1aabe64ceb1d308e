//! Each generated enum's wire strings as `&'static str`, without the formatting machinery.
//!
//! typify writes an enum's `Display` as one `match *self` whose arms are each
//! `Self::Variant => f.write_str("wire")`. For every such impl this adds
//! `impl crate::schema::Wire for Enum`, whose `wire` is the same match returning the strings:
//! the hot path (matching subscriptions, lower-casing statuses) reads them with no `fmt::write`
//! and no buffer. The strings are the `Display` ones by construction; tests/schema.rs checks the
//! two agree for every variant of the enums the core reads.

use quote::quote;

/// Adds a `Wire` impl for every enum whose `Display` has typify's shape; returns how many.
/// An untagged enum whose `Display` passes each variant's value on (`Self::Lower(x) => x.fmt(f)`)
/// gets one when every variant holds an enum that has one.
pub fn add(file: &mut syn::File) -> usize {
    let variants = enum_variant_types(file);
    let mut done: Vec<String> = Vec::new();
    let mut added = Vec::new();
    loop {
        let before = added.len();
        for item in &file.items {
            let syn::Item::Impl(imp) = item else { continue };
            let ty = &imp.self_ty;
            let name = quote!(#ty).to_string();
            if !is_display(imp) || done.contains(&name) {
                continue;
            }
            let Some((scrutinee, arms)) = display_arms(imp) else {
                continue;
            };
            let ready = arms.iter().all(|(_, body)| match body {
                Body::Lit(_) => true,
                Body::Inner(_) => variants
                    .get(&name)
                    .is_some_and(|inner| inner.iter().all(|t| done.contains(t))),
            });
            if !ready {
                continue;
            }
            let arms = arms.iter().map(|(pat, body)| match body {
                Body::Lit(lit) => quote!(#pat => #lit,),
                Body::Inner(x) => quote!(#pat => crate::schema::Wire::wire(#x),),
            });
            added.push(syn::parse_quote! {
                impl crate::schema::Wire for #ty {
                    fn wire(&self) -> &'static str {
                        match #scrutinee { #(#arms)* }
                    }
                }
            });
            done.push(name);
        }
        if added.len() == before {
            break;
        }
    }
    let n = added.len();
    file.items.extend(added);
    n
}

/// What an arm of a `Display` writes.
enum Body {
    /// `f.write_str("wire")`
    Lit(syn::LitStr),
    /// `x.fmt(f)`: the value the variant holds.
    Inner(syn::Ident),
}

/// The types each enum's tuple variants hold, by enum name.
fn enum_variant_types(file: &syn::File) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    for item in &file.items {
        let syn::Item::Enum(e) = item else { continue };
        let types = e
            .variants
            .iter()
            .flat_map(|v| v.fields.iter())
            .map(|f| {
                let ty = &f.ty;
                quote!(#ty).to_string()
            })
            .collect();
        out.insert(e.ident.to_string(), types);
    }
    out
}

fn is_display(imp: &syn::ItemImpl) -> bool {
    imp.trait_
        .as_ref()
        .is_some_and(|(path, _)| path.segments.last().is_some_and(|s| s.ident == "Display"))
}

/// The match's scrutinee and each arm's `(pattern, body)`, if the impl's `fmt` is one match
/// whose arms each write a literal or pass a variant's value on.
fn display_arms(imp: &syn::ItemImpl) -> Option<(syn::Expr, Vec<(syn::Pat, Body)>)> {
    let syn::ImplItem::Fn(f) = imp.items.first()? else {
        return None;
    };
    let [syn::Stmt::Expr(syn::Expr::Match(m), None)] = f.block.stmts.as_slice() else {
        return None;
    };
    let arms = m
        .arms
        .iter()
        .map(|arm| {
            let syn::Expr::MethodCall(call) = arm.body.as_ref() else {
                return None;
            };
            if call.args.len() != 1 {
                return None;
            }
            let body = match (call.method.to_string().as_str(), call.args.first()?) {
                (
                    "write_str",
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }),
                ) => Body::Lit(s.clone()),
                ("fmt", _) => {
                    let syn::Expr::Path(p) = call.receiver.as_ref() else {
                        return None;
                    };
                    Body::Inner(p.path.get_ident()?.clone())
                }
                _ => return None,
            };
            Some((arm.pat.clone(), body))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((m.expr.as_ref().clone(), arms))
}
