//! Renders an Avro value in the Avro JSON encoding (the spec's: unions as `{"branch": value}`),
//! so a frozen sample's bytes have a readable twin any Avro library can check.

use anyhow::{Context, Result, bail};
use apache_avro::Schema;
use apache_avro::schema::{ArraySchema, MapSchema, NamesRef, ResolvedSchema};
use apache_avro::types::Value;
use serde_json::{Map, Value as Json};

/// Returns the Avro JSON encoding of `value`, written with `schema`.
pub fn to_avro_json(value: &Value, schema: &Schema) -> Result<Json> {
    let resolved = ResolvedSchema::try_from(schema)?;
    render(value, schema, resolved.get_names())
}

fn deref<'a>(schema: &'a Schema, names: &'a NamesRef<'a>) -> Result<&'a Schema> {
    match schema {
        Schema::Ref { name } => names
            .get(name)
            .copied()
            .with_context(|| format!("unresolved reference {name:?}")),
        other => Ok(other),
    }
}

fn branch_name(schema: &Schema) -> Result<String> {
    Ok(match schema {
        Schema::Boolean => "boolean".into(),
        Schema::Int => "int".into(),
        Schema::Long | Schema::TimestampMicros => "long".into(),
        Schema::Float => "float".into(),
        Schema::Double => "double".into(),
        Schema::String => "string".into(),
        Schema::Bytes => "bytes".into(),
        Schema::Array(_) => "array".into(),
        Schema::Map(_) => "map".into(),
        Schema::Ref { name } => name.fullname(None),
        named => named
            .name()
            .map(|n| n.fullname(None))
            .with_context(|| format!("no branch name for {named:?}"))?,
    })
}

fn render(value: &Value, schema: &Schema, names: &NamesRef<'_>) -> Result<Json> {
    let schema = deref(schema, names)?;
    Ok(match (value, schema) {
        (Value::Null, _) => Json::Null,
        (Value::Boolean(b), _) => Json::Bool(*b),
        (Value::Int(i), _) => Json::from(*i),
        (Value::Long(i) | Value::TimestampMicros(i), _) => Json::from(*i),
        (Value::Double(d), _) => serde_json::Number::from_f64(*d).map_or(Json::Null, Json::Number),
        (Value::String(s), _) => Json::String(s.clone()),
        (Value::Enum(_, symbol), _) => Json::String(symbol.clone()),
        (Value::Union(index, inner), Schema::Union(union)) => {
            let variant = union
                .variants()
                .get(*index as usize)
                .context("union index out of range")?;
            let variant = deref(variant, names)?;
            if matches!(**inner, Value::Null) {
                Json::Null
            } else {
                let mut map = Map::new();
                map.insert(branch_name(variant)?, render(inner, variant, names)?);
                Json::Object(map)
            }
        }
        (Value::Array(items), Schema::Array(ArraySchema { items: item, .. })) => Json::Array(
            items
                .iter()
                .map(|v| render(v, item, names))
                .collect::<Result<_>>()?,
        ),
        (Value::Map(entries), Schema::Map(MapSchema { types, .. })) => {
            let mut keys: Vec<&String> = entries.keys().collect();
            keys.sort();
            let mut map = Map::new();
            for key in keys {
                if let Some(v) = entries.get(key) {
                    map.insert(key.clone(), render(v, types, names)?);
                }
            }
            Json::Object(map)
        }
        (Value::Record(fields), Schema::Record(record)) => {
            let mut map = Map::new();
            for (name, v) in fields {
                let field = record
                    .fields
                    .iter()
                    .find(|f| &f.name == name)
                    .with_context(|| format!("no field {name}"))?;
                map.insert(name.clone(), render(v, &field.schema, names)?);
            }
            Json::Object(map)
        }
        (value, schema) => bail!("cannot render {value:?} as {schema:?}"),
    })
}
