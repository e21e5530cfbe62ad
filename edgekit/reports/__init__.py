"""What edgekit shows people: `progress` bars and log lines, plain-text and Markdown `tables`, PNG `plots`."""
