"""networkpype."""
