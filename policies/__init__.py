"""Pure, typed policy rules (routing, confidence, budgets, guards, roles) loaded from YAML; no I/O."""
