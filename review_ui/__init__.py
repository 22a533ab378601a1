"""The reviewer-facing web app: review queue, JSON API and decision delivery."""
