"""Shrinking a fitted model for serving: knowledge distillation (`distill`)."""
