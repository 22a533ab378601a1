"""The public API (tether.sdk) as the README's "Writing a workflow" uses it."""
