"""distillset."""
