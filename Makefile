# Shortcuts for the README's commands.
.PHONY: main test demo
main:
	bash scripts/main.sh
test:
	bash scripts/test.sh
demo:  # builds if needed, then draws docs/mixing.png
	bash -c 'source scripts/env.sh && "$$PY" -m pip install --quiet matplotlib scikit-image && "$$PY" examples/figure.py'
