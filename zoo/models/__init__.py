"""The zoo's LightningModules, one module per experiment family."""
