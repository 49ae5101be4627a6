"""Plumbing every app needs and no domain owns (../shared/docs/architecture.md, floor 0)."""
