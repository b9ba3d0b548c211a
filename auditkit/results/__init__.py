"""What an audit produces: results.json, the gate, diffs against a baseline, the signed bundle."""
