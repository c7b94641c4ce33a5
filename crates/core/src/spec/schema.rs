//! The JSON Schema of a stack file, generated from the same types the reader fills, so that
//! an editor accepts and completes exactly what stackctl reads.

use schemars::generate::SchemaSettings;

use super::StackSpec;

/// The schema's identifier. Editors find the schema by the path in a stack file's
/// `# yaml-language-server: $schema=...` comment; the identifier only names it, and the
/// trailing version changes when a change to the file format breaks old files.
const SCHEMA_ID: &str = "urn:stackctl:schema:stack-file:1";

/// The JSON Schema (draft 2020-12) of a stack file, as `schemas/stack.schema.json` holds it.
pub fn stack_schema() -> serde_json::Value {
    let mut schema = SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<StackSpec>();
    schema.insert("$id".to_owned(), SCHEMA_ID.into());
    // The type's own description speaks of one stack; the schema's reader wants to know
    // what the document is and where it comes from.
    schema.insert(
        "description".to_owned(),
        "A stackctl stack file: one stack of bridge networks and the containers that join them, \
         with the flows between containers and the ports they publish. Generated from stackctl's \
         own types; `stackctl validate` checks what a schema cannot, such as references and addresses."
            .into(),
    );
    schema.to_value()
}
