//! Maps of the stack file kept in file order, with the position of every key.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::{MembershipSpec, Memberships, NAME_MAX_LEN, NAME_PATTERN};

/// A YAML mapping from names to values, in the order written. Duplicate keys never reach
/// it: the YAML reader rejects them with their position.
#[derive(Debug)]
pub struct Entries<T>(pub Vec<(Spanned<String>, T)>);

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Entries<T> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of names")
            }

            // An empty `networks:` is null in YAML; reading it as no entries is what a
            // person who wrote it means.
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Entries(Vec::new()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    // `db_nw:` with nothing after it is null: the defaults.
                    let value: Option<T> = map.next_value()?;
                    entries.push((key, value.unwrap_or_default()));
                }
                Ok(Entries(entries))
            }
        }

        // `deserialize_any`, because the reader hands a null (an empty section) only to a
        // visitor that asked for any type.
        deserializer.deserialize_any(EntriesVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Entries<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("Entries_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        // An empty section (`networks:` with nothing under it) is null in YAML, and the
        // reader takes it as no entries.
        json_schema!({
            "type": ["object", "null"],
            "propertyNames": name_schema(),
            "additionalProperties": generator.subschema_for::<T>(),
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// Reads a list that may be written empty (`talks_to:` with nothing after it, which YAML
/// reads as null) as no entries.
pub fn empty_when_null<'de, D: de::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Lets a mapping be written empty: `web_nw:` with nothing after it is null in YAML, and
/// the reader takes it as all defaults. Setting the type here, rather than wrapping the
/// schema in a choice with null, keeps an editor's errors at the key that is wrong.
pub fn nullable(schema: &mut Schema) {
    schema.insert("type".to_owned(), serde_json::json!(["object", "null"]));
}

/// A name, as the schema describes it; the parser reads names as plain strings and
/// validation checks them, with a position.
pub struct Name;

impl JsonSchema for Name {
    fn schema_name() -> Cow<'static, str> {
        "Name".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        name_schema().try_into().expect("the name schema is an object")
    }
}

/// The schema of a stack, network, container or alias name.
fn name_schema() -> serde_json::Value {
    serde_json::json!({ "type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX_LEN })
}

impl<'de> Deserialize<'de> for Memberships {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembershipsVisitor;

        impl<'de> Visitor<'de> for MembershipsVisitor {
            type Value = Memberships;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of network names or a mapping of network names to settings")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Memberships(Vec::new()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut memberships = Vec::new();
                while let Some(name) = seq.next_element::<Spanned<String>>()? {
                    memberships.push((name, MembershipSpec::default()));
                }
                Ok(Memberships(memberships))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut memberships = Vec::new();
                while let Some(name) = map.next_key::<Spanned<String>>()? {
                    // `web_nw:` with nothing after it is null: the defaults.
                    let settings: Option<MembershipSpec> = map.next_value()?;
                    memberships.push((name, settings.unwrap_or_default()));
                }
                Ok(Memberships(memberships))
            }
        }

        deserializer.deserialize_any(MembershipsVisitor)
    }
}

impl JsonSchema for Memberships {
    fn schema_name() -> Cow<'static, str> {
        "Memberships".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A list of network names, or a mapping of network names to per-network settings.",
            "oneOf": [
                { "type": "array", "items": name_schema(), "uniqueItems": true },
                {
                    "type": "object",
                    "propertyNames": name_schema(),
                    "additionalProperties": generator.subschema_for::<MembershipSpec>(),
                },
                { "type": "null" },
            ],
        })
    }
}
