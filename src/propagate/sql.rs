//! Tagging SQL statements with the request they serve, in the
//! [sqlcommenter](https://google.github.io/sqlcommenter/spec/) format, so a
//! slow query in the database's own logs leads back to the request.

use std::borrow::Cow;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::context::RequestContext;

/// The statement with a [sqlcommenter](https://google.github.io/sqlcommenter/spec/)
/// comment naming the current request (its `request_id`, and its
/// `traceparent` and `tracestate` when it is part of a trace), or the
/// statement unchanged outside a request:
///
/// ```text
/// SELECT * FROM orders WHERE id = $1 /*request_id='req-7',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/
/// ```
///
/// Rules, as the specification gives them:
/// - keys sorted; each value URL-encoded (every byte but `A-Z a-z 0-9
///   - . _ ~` as `%XX`, so no `'`, `*` or `/` can end the value or the
///   comment early) and quoted with `'`;
/// - a statement that already holds a comment (`--`, `/*` or MySQL's `#`
///   anywhere) is returned unchanged, and so is an empty one;
/// - the comment goes before the trailing `;` (all of them, kept).
///
/// **Cost.** The comment makes every request's statement text unique.
/// Drivers and servers that cache prepared statements by their text
/// (sqlx's per-connection statement cache, a pooler's prepared
/// statements) then prepare each tagged statement anew and fill their
/// caches with one-off entries: tag ad-hoc and slow-path queries, not
/// the hot prepared ones. Tools that group by the parsed statement
/// (PostgreSQL's `pg_stat_statements`, MySQL's statement digests)
/// ignore comments, so their grouping is unaffected; they keep one
/// sample text, with one request's comment.
///
/// ```
/// use corrlog::propagate::tag_sql;
/// use corrlog::{RequestContext, RequestId};
///
/// assert_eq!(tag_sql("SELECT 1"), "SELECT 1");
/// let ctx = RequestContext::new(RequestId::new("req-7").unwrap());
/// ctx.run(|| {
///     assert_eq!(
///         tag_sql("SELECT * FROM orders WHERE id = $1"),
///         "SELECT * FROM orders WHERE id = $1 /*request_id='req-7'*/"
///     );
///     assert_eq!(
///         tag_sql("UPDATE carts SET n = n + 1;"),
///         "UPDATE carts SET n = n + 1 /*request_id='req-7'*/;"
///     );
///     assert_eq!(tag_sql("SELECT 1 -- mine"), "SELECT 1 -- mine");
/// });
/// ```
pub fn tag_sql(statement: &str) -> Cow<'_, str> {
    RequestContext::with_current(|rc| match rc {
        Some(rc) => rc.tag_sql(statement),
        None => Cow::Borrowed(statement),
    })
}

impl RequestContext {
    /// [`tag_sql`] for this request.
    pub(crate) fn tag_sql<'a>(&self, statement: &'a str) -> Cow<'a, str> {
        let traceparent = self.trace().map(|t| t.traceparent());
        let mut pairs = vec![("request_id", self.id().as_str())];
        if let Some(tp) = &traceparent {
            pairs.push(("traceparent", tp.as_str()));
        }
        if let Some(state) = self.trace().and_then(|t| t.tracestate()) {
            pairs.push(("tracestate", state));
        }
        with_comment(statement, &mut pairs)
    }
}

/// `statement` with a sqlcommenter comment of `pairs`, or unchanged when
/// it has a comment already or `pairs` is empty.
pub(crate) fn with_comment<'a>(statement: &'a str, pairs: &mut [(&str, &str)]) -> Cow<'a, str> {
    // MySQL's `#` starts a comment too, which would swallow the tag.
    let commented = ["--", "/*", "#"].iter().any(|c| statement.contains(c));
    // The statement without the semicolons and spaces that end it.
    let body = statement.trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    if pairs.is_empty() || commented || body.trim_start().is_empty() {
        return Cow::Borrowed(statement);
    }
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    // The comment goes before the semicolons, all kept.
    let tail = ";".repeat(statement[body.len()..].matches(';').count());
    let mut out = String::with_capacity(statement.len() + 96);
    out.push_str(body);
    out.push_str(" /*");
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        url_encode(&mut out, key);
        out.push_str("='");
        url_encode(&mut out, value);
        out.push('\'');
    }
    out.push_str("*/");
    out.push_str(&tail);
    Cow::Owned(out)
}

/// Every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`).
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Appends `text` with every byte but the unreserved ones as `%XX`.
fn url_encode(out: &mut String, text: &str) {
    out.extend(utf8_percent_encode(text, ENCODED));
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decode(text: &str) -> String {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .unwrap()
            .into_owned()
    }

    #[test]
    fn the_specification_s_rules() {
        let mut pairs = [("traceparent", "00-a-b-01"), ("route", "/polls 1000'*/")];
        assert_eq!(
            with_comment("SELECT * FROM polls", &mut pairs),
            "SELECT * FROM polls /*route='%2Fpolls%201000%27%2A%2F',traceparent='00-a-b-01'*/"
        );
        assert_eq!(with_comment("SELECT 1", &mut []), "SELECT 1");
        for commented in ["SELECT 1 /* mine */", "SELECT 1 -- mine", "SELECT '--'"] {
            assert!(matches!(
                with_comment(commented, &mut [("k", "v")]),
                Cow::Borrowed(s) if s == commented
            ));
        }
        assert_eq!(
            with_comment("DELETE FROM t ;  \n", &mut [("k", "v")]),
            "DELETE FROM t /*k='v'*/;"
        );
        assert_eq!(
            with_comment("SELECT 1;;", &mut [("k", "v")]),
            "SELECT 1 /*k='v'*/;;"
        );
        assert_eq!(
            with_comment("SELECT 1; ;", &mut [("k", "v")]),
            "SELECT 1 /*k='v'*/;;"
        );
        // MySQL's `#` comment would swallow the tag; an empty statement
        // has nothing to tag.
        for unchanged in ["SELECT 1 # mine", "", " ; ;", ";"] {
            assert!(matches!(
                with_comment(unchanged, &mut [("k", "v")]),
                Cow::Borrowed(s) if s == unchanged
            ));
        }
    }

    #[test]
    fn a_traced_request_adds_its_traceparent_and_tracestate() {
        use crate::context::{RequestId, TraceContext};

        let trace =
            TraceContext::from_parts([0x4b; 16], [0x0f; 8], 1, Some("congo=t61,rojo=00f0".into()));
        let ctx = RequestContext::with_trace(
            RequestId::new("req-1").unwrap(),
            Some(trace),
            crate::context::X_REQUEST_ID,
        );
        assert_eq!(
            ctx.tag_sql("SELECT 1"),
            format!(
                "SELECT 1 /*request_id='req-1',traceparent='00-{}-{}-01',tracestate='congo%3Dt61%2Crojo%3D00f0'*/",
                "4b".repeat(16),
                "0f".repeat(8)
            )
        );
        assert_eq!(
            ctx.clone().run(|| tag_sql("SELECT 2")),
            ctx.tag_sql("SELECT 2")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any statement without a comment (and not empty), any values: the statement, then
        /// one well-formed comment that ends only at its end, whose values
        /// decode to the originals, keys sorted.
        #[test]
        fn one_comment_that_cannot_close_early(
            statement in "[^;]{0,40}",
            a in any::<String>(),
            b in any::<String>(),
        ) {
            prop_assume!(!statement.contains("--") && !statement.contains("/*"));
            prop_assume!(!statement.contains('#') && !statement.trim().is_empty());
            let mut pairs = [("zeta", a.as_str()), ("alpha", b.as_str())];
            let tagged = with_comment(&statement, &mut pairs).into_owned();
            let body = statement.trim_end();
            prop_assert!(tagged.starts_with(body));
            let comment = &tagged[body.len()..];
            prop_assert!(comment.starts_with(" /*") && comment.ends_with("*/"));
            let inner = &comment[3..comment.len() - 2];
            prop_assert!(!inner.contains("*/") && !inner.contains("/*"));
            let parts: Vec<&str> = inner.split(',').collect();
            prop_assert_eq!(parts.len(), 2);
            let (k0, v0) = parts[0].split_once('=').unwrap();
            let (k1, v1) = parts[1].split_once('=').unwrap();
            prop_assert_eq!((k0, k1), ("alpha", "zeta"));
            for (quoted, original) in [(v0, &b), (v1, &a)] {
                prop_assert!(quoted.len() >= 2 && quoted.starts_with('\'') && quoted.ends_with('\''));
                let value = &quoted[1..quoted.len() - 1];
                prop_assert!(!value.contains('\''));
                prop_assert_eq!(&decode(value), original);
            }
        }
    }
}
