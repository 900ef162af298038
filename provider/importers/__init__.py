"""`sigwarden import <source>`: another admission controller's custom resources → sigwarden config and constraints.

Every importer is one module here with a `convert(documents, options) -> Conversion` function; they share the
conversion model, the migration report and the `TODO:` placeholders (`model`), and the output (`output`).
"""
