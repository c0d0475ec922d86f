//! Queries from their JSON options. Anything the engine does not understand is an error naming
//! it (the operator, the option, the field): a query never matches silently by mistake.

use super::{Condition, Op, Operand, Query, SortField};
use crate::document::ID_FIELD;
use crate::error::json_type;
use crate::CoreError;
use serde_json::{Map, Value};

/// The options a query takes.
const OPTIONS: &str = "where, sort, offset, limit, includeDeleted";
/// The operators a condition takes.
const OPERATORS: &str = "$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists";

fn bad<T>(message: String) -> Result<T, CoreError> {
    Err(CoreError::InvalidQuery(message))
}

impl Query {
    /// Parses `{ where?: { path: value | { $op: operand, ... } }, sort?: "f" | "-f" | [...],
    /// offset?: n, limit?: n, includeDeleted?: bool }`.
    pub fn from_json(value: &Value) -> Result<Query, CoreError> {
        let Value::Object(options) = value else {
            return bad(format!(
                "a query must be an object, got {}",
                json_type(value)
            ));
        };
        let mut query = Query::default();
        for (option, value) in options {
            match option.as_str() {
                "where" => query.filter = conditions(value)?,
                "sort" => query.sort = sort(value)?,
                "offset" => query.offset = count(option, value)?,
                "limit" => query.limit = Some(count(option, value)?),
                "includeDeleted" => match value {
                    Value::Bool(b) => query.include_deleted = *b,
                    other => {
                        return bad(format!(
                            "`includeDeleted` must be true or false, got {}",
                            json_type(other)
                        ))
                    }
                },
                _ => {
                    return bad(format!(
                        "unknown query option `{option}` (known: {OPTIONS})"
                    ))
                }
            }
        }
        Ok(query)
    }
}

fn count(option: &str, value: &Value) -> Result<usize, CoreError> {
    match value.as_u64() {
        Some(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        None => bad(format!(
            "`{option}` must be a whole number of 0 or more, got {value}"
        )),
    }
}

fn conditions(value: &Value) -> Result<Vec<Condition>, CoreError> {
    let Value::Object(fields) = value else {
        return bad(format!(
            "`where` must be an object, got {}",
            json_type(value)
        ));
    };
    let mut out = Vec::with_capacity(fields.len());
    for (path, wanted) in fields {
        if path.starts_with('$') {
            return bad(format!(
                "unknown query operator `{path}` (conditions are {{ field: value }} or \
                 {{ field: {{ $op: value }} }}; operators: {OPERATORS})"
            ));
        }
        check_path(path)?;
        match wanted {
            Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
                operators(path, ops, &mut out)?;
            }
            value => out.push(Condition {
                path: path.clone(),
                op: Op::Eq(Operand::new(value)),
            }),
        }
    }
    Ok(out)
}

fn operators(
    path: &str,
    ops: &Map<String, Value>,
    out: &mut Vec<Condition>,
) -> Result<(), CoreError> {
    for (name, operand) in ops {
        let op = match name.as_str() {
            "$eq" => Op::Eq(Operand::new(operand)),
            "$ne" => Op::Ne(Operand::new(operand)),
            "$gt" => Op::Gt(ordered(name, path, operand)?),
            "$gte" => Op::Gte(ordered(name, path, operand)?),
            "$lt" => Op::Lt(ordered(name, path, operand)?),
            "$lte" => Op::Lte(ordered(name, path, operand)?),
            "$in" => Op::In(list(name, path, operand)?),
            "$nin" => Op::Nin(list(name, path, operand)?),
            "$exists" => match operand {
                Value::Bool(b) => Op::Exists(*b),
                other => {
                    return bad(format!(
                        "`$exists` needs true or false, got {} (on `{path}`)",
                        json_type(other)
                    ))
                }
            },
            _ if name.starts_with('$') => {
                return bad(format!(
                    "unknown query operator `{name}` (on `{path}`; operators: {OPERATORS})"
                ))
            }
            _ => {
                return bad(format!(
                    "`{path}` mixes operators and fields (`{name}`): compare a whole object with \
                     {{ $eq: {{...}} }}"
                ))
            }
        };
        out.push(Condition {
            path: path.to_owned(),
            op,
        });
    }
    Ok(())
}

/// The operand of `$gt` and the like: a number or a string.
fn ordered(name: &str, path: &str, operand: &Value) -> Result<Operand, CoreError> {
    let operand_value = Operand::new(operand);
    if operand_value.is_ordered() {
        Ok(operand_value)
    } else {
        bad(format!(
            "`{name}` needs a number or a string, got {} (on `{path}`)",
            json_type(operand)
        ))
    }
}

fn list(name: &str, path: &str, operand: &Value) -> Result<Vec<Operand>, CoreError> {
    match operand {
        Value::Array(items) => Ok(items.iter().map(Operand::new).collect()),
        other => bad(format!(
            "`{name}` needs an array, got {} (on `{path}`)",
            json_type(other)
        )),
    }
}

fn sort(value: &Value) -> Result<Vec<SortField>, CoreError> {
    let specs: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    specs
        .into_iter()
        .map(|spec| match spec {
            Value::String(spec) => sort_field(spec),
            other => bad(format!(
                "`sort` takes field names (\"title\", \"-title\") or a list of them, got {}",
                json_type(other)
            )),
        })
        .collect()
}

fn sort_field(spec: &str) -> Result<SortField, CoreError> {
    let (field, descending) = match spec.strip_prefix('-') {
        Some(field) => (field, true),
        None if spec.is_empty() => (ID_FIELD, false),
        None => (spec, false),
    };
    check_path(field)?;
    Ok(SortField {
        field: field.to_owned(),
        descending,
    })
}

/// A field path: names separated by dots.
fn check_path(path: &str) -> Result<(), CoreError> {
    if path.split('.').any(str::is_empty) {
        return bad(format!(
            "a field must be a name or names separated by dots (`address.city`), got `{path}`"
        ));
    }
    Ok(())
}
