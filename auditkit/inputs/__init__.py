"""What an audit reads: data splits, the model and its loaders, training runs, deployed artefacts."""
