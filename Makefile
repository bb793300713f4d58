# Shortcuts for the README's commands.
.PHONY: main test docs demo bench
main:
	bash scripts/main.sh
test:
	bash scripts/test.sh
docs:  # the documentation site, into build/docs/html
	bash scripts/docs.sh
demo:  # builds if needed, then draws docs/mixing.png and docs/detection.png anew
	bash -c 'source scripts/env.sh && "$$PY" -m pip install --quiet matplotlib scikit-image && "$$PY" examples/figure.py && "$$PY" examples/detection_figure.py'
bench:  # the full benchmark on this machine's CPU (about 15 minutes); tables and chart in benchmarks/results
	bash -c 'source scripts/env.sh && "$$PY" -m benchmarks.run --device cpu'
