"""Performance measurements of momentum-lab, written as JSON under benchmarks/results/."""
