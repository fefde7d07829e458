"""The policy guard: model (schema), loader, engine (pure), facts, state (SQLite), rate limits, audit, guard."""
