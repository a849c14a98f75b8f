//! Text → syntax tree, with the grammar in `grammar/countersign.pest` and
//! operator precedence in a Pratt parser.
//!
//! Precedence, loosest first: `or`; `and`; `not`; comparisons and `in`;
//! `+ -`; `* / %`; unary `-`; `.field` and `[index]`. `not` sits below the
//! comparisons (as in Python), so `not payload.amount > 5` negates the
//! comparison rather than the amount.

use std::sync::LazyLock;

use pest::Parser as _;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::{BinOp, Node, NodeKind, Span, UnOp};
use super::err::{ExprDiagnostic, ExprErrorKind};
use crate::value::Value;

/// The largest expression accepted, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 4096;
/// The deepest nesting of brackets, parentheses and prefix operators accepted.
pub const MAX_NESTING: usize = 32;

#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/countersign.pest"]
struct Grammar;

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Assoc::Left))
        .op(Op::infix(Rule::op_and, Assoc::Left))
        .op(Op::prefix(Rule::op_not))
        .op(Op::infix(Rule::op_eq, Assoc::Left)
            | Op::infix(Rule::op_ne, Assoc::Left)
            | Op::infix(Rule::op_lt, Assoc::Left)
            | Op::infix(Rule::op_le, Assoc::Left)
            | Op::infix(Rule::op_gt, Assoc::Left)
            | Op::infix(Rule::op_ge, Assoc::Left)
            | Op::infix(Rule::op_in, Assoc::Left))
        .op(Op::infix(Rule::op_add, Assoc::Left) | Op::infix(Rule::op_sub, Assoc::Left))
        .op(Op::infix(Rule::op_mul, Assoc::Left)
            | Op::infix(Rule::op_div, Assoc::Left)
            | Op::infix(Rule::op_rem, Assoc::Left))
        .op(Op::prefix(Rule::op_neg))
        .op(Op::postfix(Rule::member) | Op::postfix(Rule::index))
});

/// Parses an expression into a syntax tree.
pub fn parse(text: &str) -> Result<Node, ExprDiagnostic> {
    if text.len() > MAX_EXPRESSION_BYTES {
        return Err(ExprDiagnostic::new(
            ExprErrorKind::Limit,
            format!("expression is longer than {MAX_EXPRESSION_BYTES} bytes"),
            Span::new(0, text.len()),
        ));
    }
    check_nesting(text)?;
    let mut pairs = Grammar::parse(Rule::condition, text).map_err(|e| syntax_error(text, e))?;
    let condition = pairs.next().ok_or_else(|| {
        ExprDiagnostic::new(ExprErrorKind::Syntax, "empty expression", Span::new(0, 0))
    })?;
    let expr = condition.into_inner().next().ok_or_else(|| {
        ExprDiagnostic::new(ExprErrorKind::Syntax, "empty expression", Span::new(0, 0))
    })?;
    build_expr(expr.into_inner())
}

/// Rejects inputs nested deeper than [`MAX_NESTING`] before pest recurses
/// into them, so a hostile policy cannot exhaust the stack.
fn check_nesting(text: &str) -> Result<(), ExprDiagnostic> {
    let mut depth = 0usize;
    let mut prefix_run = 0usize;
    let mut in_string: Option<char> = None;
    let mut escaped = false;
    let mut skip = 0usize;
    let bytes = text.as_bytes();
    let is_ident = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    for (i, c) in text.char_indices() {
        if let Some(q) = in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                in_string = None;
            }
            continue;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        match c {
            '"' | '\'' => in_string = Some(c),
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            '!' | '-' => prefix_run += 1,
            // The word `not` counts like `!`.
            'n' if text[i..].starts_with("not")
                && !is_ident(bytes.get(i + 3))
                && !is_ident(i.checked_sub(1).and_then(|p| bytes.get(p))) =>
            {
                prefix_run += 1;
                skip = 2;
            }
            c if c.is_whitespace() => {}
            _ => prefix_run = 0,
        }
        if depth > MAX_NESTING || prefix_run > MAX_NESTING {
            return Err(ExprDiagnostic::new(
                ExprErrorKind::Limit,
                format!("expression is nested deeper than {MAX_NESTING} levels"),
                Span::new(i, i + c.len_utf8()),
            ));
        }
    }
    Ok(())
}

fn syntax_error(text: &str, e: pest::error::Error<Rule>) -> ExprDiagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let span = match e.location {
        InputLocation::Pos(p) => Span::new(p, (p + 1).min(text.len()).max(p)),
        InputLocation::Span((s, t)) => Span::new(s, t),
    };
    let found = text[span.start..]
        .chars()
        .next()
        .map_or_else(|| "end of expression".to_owned(), |c| format!("`{c}`"));
    let expected = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => describe_expected(positives),
        ErrorVariant::CustomError { message } => message.clone(),
    };
    ExprDiagnostic::new(
        ExprErrorKind::Syntax,
        format!("syntax error: unexpected {found}"),
        span,
    )
    .with_label(format!("expected {expected}"))
}

fn describe_expected(rules: &[Rule]) -> String {
    let mut words: Vec<&str> = rules
        .iter()
        .map(|r| match r {
            Rule::expr | Rule::number | Rule::string | Rule::boolean | Rule::null => "a value",
            Rule::variable | Rule::call | Rule::function_name | Rule::list => "a value",
            Rule::op_or | Rule::op_and => "`and` or `or`",
            Rule::op_eq
            | Rule::op_ne
            | Rule::op_lt
            | Rule::op_le
            | Rule::op_gt
            | Rule::op_ge
            | Rule::op_in => "a comparison",
            Rule::op_add | Rule::op_sub | Rule::op_mul | Rule::op_div | Rule::op_rem => {
                "an operator"
            }
            Rule::member | Rule::index => "`.` or `[`",
            Rule::field_name | Rule::argument_name => "a field name",
            Rule::named_argument => "a value",
            Rule::EOI => "end of expression",
            _ => "a value",
        })
        .collect();
    words.sort_unstable();
    words.dedup();
    match words.len() {
        0 => "something else".to_owned(),
        1 => words[0].to_owned(),
        _ => {
            let last = words.pop().unwrap_or_default();
            format!("{} or {last}", words.join(", "))
        }
    }
}

fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let s = pair.as_span();
    Span::new(s.start(), s.end())
}

fn build_expr(pairs: Pairs<'_, Rule>) -> Result<Node, ExprDiagnostic> {
    PRATT
        .map_primary(build_primary)
        .map_prefix(|op, rhs| {
            let rhs = rhs?;
            let op_span = span_of(&op);
            let un = if op.as_rule() == Rule::op_not {
                UnOp::Not
            } else {
                UnOp::Neg
            };
            Ok(Node {
                span: op_span.to(rhs.span),
                kind: NodeKind::Unary(un, Box::new(rhs)),
            })
        })
        .map_postfix(|lhs, op| {
            let lhs = lhs?;
            let span = lhs.span.to(span_of(&op));
            match op.as_rule() {
                Rule::member => {
                    let name = op
                        .into_inner()
                        .next()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default();
                    Ok(Node {
                        kind: NodeKind::Member(Box::new(lhs), name),
                        span,
                    })
                }
                _ => {
                    let inner = op.into_inner().next().ok_or_else(|| {
                        ExprDiagnostic::new(ExprErrorKind::Syntax, "empty index", span)
                    })?;
                    let index = build_expr(inner.into_inner())?;
                    Ok(Node {
                        kind: NodeKind::Index(Box::new(lhs), Box::new(index)),
                        span,
                    })
                }
            }
        })
        .map_infix(|lhs, op, rhs| {
            let (lhs, rhs) = (lhs?, rhs?);
            let bin = match op.as_rule() {
                Rule::op_or => BinOp::Or,
                Rule::op_and => BinOp::And,
                Rule::op_eq => BinOp::Eq,
                Rule::op_ne => BinOp::Ne,
                Rule::op_lt => BinOp::Lt,
                Rule::op_le => BinOp::Le,
                Rule::op_gt => BinOp::Gt,
                Rule::op_ge => BinOp::Ge,
                Rule::op_in => BinOp::In,
                Rule::op_add => BinOp::Add,
                Rule::op_sub => BinOp::Sub,
                Rule::op_mul => BinOp::Mul,
                Rule::op_div => BinOp::Div,
                _ => BinOp::Rem,
            };
            Ok(Node {
                span: lhs.span.to(rhs.span),
                kind: NodeKind::Binary(bin, Box::new(lhs), Box::new(rhs)),
            })
        })
        .parse(pairs)
}

fn build_primary(pair: Pair<'_, Rule>) -> Result<Node, ExprDiagnostic> {
    let span = span_of(&pair);
    let kind = match pair.as_rule() {
        Rule::expr => return build_expr(pair.into_inner()),
        Rule::number => {
            let text = pair.as_str();
            let scientific = text.contains(['e', 'E']);
            let n = crate::value::parse_decimal_literal(text, scientific).ok_or_else(|| {
                ExprDiagnostic::new(
                    ExprErrorKind::Literal,
                    format!("number `{text}` is outside the exact decimal range"),
                    span,
                )
            })?;
            NodeKind::Literal(Value::Number(n))
        }
        Rule::string => {
            let inner = pair.into_inner().next();
            let raw = inner.as_ref().map_or("", |p| p.as_str());
            let raw_start = inner.as_ref().map_or(span.start, |p| p.as_span().start());
            NodeKind::Literal(Value::String(unescape(raw, raw_start)?))
        }
        Rule::boolean => NodeKind::Literal(Value::Bool(pair.as_str() == "true")),
        Rule::null => NodeKind::Literal(Value::Null),
        Rule::variable => NodeKind::Ident(pair.as_str().to_owned()),
        Rule::list => {
            let items = pair
                .into_inner()
                .map(|p| build_expr(p.into_inner()))
                .collect::<Result<Vec<_>, _>>()?;
            NodeKind::List(items)
        }
        Rule::call => {
            let mut inner = pair.into_inner();
            let name = inner.next().ok_or_else(|| {
                ExprDiagnostic::new(ExprErrorKind::Syntax, "missing function name", span)
            })?;
            let name_span = span_of(&name);
            let args = inner.map(build_argument).collect::<Result<Vec<_>, _>>()?;
            NodeKind::Call(name.as_str().to_owned(), name_span, args)
        }
        other => {
            return Err(ExprDiagnostic::new(
                ExprErrorKind::Syntax,
                format!("unexpected {other:?}"),
                span,
            ));
        }
    };
    Ok(Node { kind, span })
}

/// One argument of a call: an expression, or `name: expression`.
fn build_argument(pair: Pair<'_, Rule>) -> Result<Node, ExprDiagnostic> {
    if pair.as_rule() != Rule::named_argument {
        return build_expr(pair.into_inner());
    }
    let span = span_of(&pair);
    let mut inner = pair.into_inner();
    let (Some(name), Some(value)) = (inner.next(), inner.next()) else {
        return Err(ExprDiagnostic::new(
            ExprErrorKind::Syntax,
            "a named argument needs a name and a value",
            span,
        ));
    };
    let name_span = span_of(&name);
    Ok(Node {
        kind: NodeKind::Named(
            name.as_str().to_owned(),
            name_span,
            Box::new(build_expr(value.into_inner())?),
        ),
        span,
    })
}

fn unescape(raw: &str, offset: usize) -> Result<String, ExprDiagnostic> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else { break };
        match e {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let hex: String = chars.by_ref().take(4).map(|(_, h)| h).collect();
                let ch = u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| {
                        ExprDiagnostic::new(
                            ExprErrorKind::Literal,
                            format!("`\\u{hex}` is not a valid character"),
                            Span::new(offset + i, offset + i + 6),
                        )
                    })?;
                out.push(ch);
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(n: &Node) -> String {
        match &n.kind {
            NodeKind::Literal(v) => v.to_json(),
            NodeKind::Ident(s) => s.clone(),
            NodeKind::List(items) => {
                format!(
                    "[{}]",
                    items.iter().map(shape).collect::<Vec<_>>().join(",")
                )
            }
            NodeKind::Member(b, f) => format!("{}.{f}", shape(b)),
            NodeKind::Index(b, i) => format!("{}[{}]", shape(b), shape(i)),
            NodeKind::Call(f, _, args) => {
                format!(
                    "{f}({})",
                    args.iter().map(shape).collect::<Vec<_>>().join(",")
                )
            }
            NodeKind::Unary(UnOp::Not, x) => format!("(not {})", shape(x)),
            NodeKind::Unary(UnOp::Neg, x) => format!("(-{})", shape(x)),
            NodeKind::Binary(op, a, b) => format!("({} {} {})", shape(a), op.symbol(), shape(b)),
            NodeKind::Named(name, _, value) => format!("{name}: {}", shape(value)),
        }
    }

    fn p(s: &str) -> String {
        shape(&parse(s).unwrap())
    }

    #[test]
    fn precedence() {
        assert_eq!(p("a or b and c"), "(a or (b and c))");
        assert_eq!(p("a || b && c"), "(a or (b and c))");
        assert_eq!(p("1 + 2 * 3 > 6"), "((1 + (2 * 3)) > 6)");
        assert_eq!(p("not payload.x > 5"), "(not (payload.x > 5))");
        assert_eq!(
            p("!has(payload.x) or payload.x"),
            "((not has(payload.x)) or payload.x)"
        );
        assert_eq!(p("-payload.a * 2"), "((-payload.a) * 2)");
        assert_eq!(p("a - b - c"), "((a - b) - c)");
        assert_eq!(p("x in [1, 2,]"), "(x in [1,2])");
    }

    #[test]
    fn accessors() {
        assert_eq!(
            p(r#"payload["odd key"].b[0]"#),
            r#"payload["odd key"].b[0]"#
        );
        assert_eq!(p("payload.in.and"), "payload.in.and");
    }

    #[test]
    fn word_operators_need_a_boundary() {
        assert_eq!(p("order and notice"), "(order and notice)");
        assert_eq!(p("android or inside"), "(android or inside)");
    }

    #[test]
    fn named_arguments() {
        assert_eq!(
            p(r#"count(within: "24h", where: run.payload.c == payload.c) >= 3"#),
            r#"(count(within: "24h",where: (run.payload.c == payload.c)) >= 3)"#
        );
        assert_eq!(
            p(r#"sum(run.payload.amount, within: "1d",)"#),
            r#"sum(run.payload.amount,within: "1d")"#
        );
        assert!(parse("count(within:)").is_err());
        assert!(parse("count(: 1)").is_err());
    }

    #[test]
    fn literals() {
        assert_eq!(p(r#""a\"b\n""#), r#""a\"b\n""#);
        assert_eq!(p(r"'it\'s'"), r#""it's""#);
        assert_eq!(p(r#""\u00e9""#), "\"é\"");
        assert_eq!(p("1250.10"), "1250.1");
        assert_eq!(p("[true, false, null]"), "[true,false,null]");
    }

    #[test]
    fn syntax_errors_point_at_the_problem() {
        let e = parse("payload.amount >").unwrap_err();
        assert_eq!(e.span.start, 16);
        let e = parse("payload.amount > > 5").unwrap_err();
        assert_eq!(e.span.start, 17);
        assert!(e.message.contains("unexpected `>`"), "{}", e.message);
        assert!(parse("").is_err());
        assert!(parse("(a").is_err());
        assert!(parse("a b").is_err());
    }

    #[test]
    fn limits() {
        let deep = "(".repeat(40) + "1" + &")".repeat(40);
        assert!(parse(&deep).unwrap_err().message.contains("nested deeper"));
        let nots = "not ".repeat(40) + "true";
        assert!(parse(&nots).is_err());
        let bangs = "!".repeat(40) + "true";
        assert!(parse(&bangs).is_err());
        let long = "1 + ".repeat(1100) + "1";
        assert!(parse(&long).unwrap_err().message.contains("longer than"));
        assert!(parse(&("(".repeat(30) + "1" + &")".repeat(30))).is_ok());
    }
}
