"""The networks: the paper's CAE, the --arch registry, the losses, and encoding frames."""
