"""The store: SQLModel tables (ledger, reviews, audit) and the engine that holds them."""
