"""Plotly figures, one module per area; functions return figures and never show them."""
