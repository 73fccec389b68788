"""What perturbs inputs: adversarial attacks (foolbox) and the sanity checks of their evaluation."""
