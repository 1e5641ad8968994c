# Everyday commands. `make run` and `make test` set up everything they need.
PYTHON_EXTRAS_TEST := test,operator,k8s-test
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast test-compose load check bench backup restore rebuild-timelines venv clean

venv:
	@scripts/ensure-venv.sh ""

## Run the whole system locally (embedded mode: SQLite under var/, gateway on 127.0.0.1:8080).
run: venv
	$(BIN)/twitter-system run

## Run the test suite (SQLite and a throwaway PostgreSQL server), without the Docker end-to-end test.
test:
	@scripts/ensure-venv.sh "$(PYTHON_EXTRAS_TEST)"
	@scripts/ensure-postgres.sh
	$(BIN)/pytest -q -m "not compose"

## The Docker Compose end-to-end test: starts a private Docker engine, builds images offline.
test-compose:
	@scripts/ensure-venv.sh "$(PYTHON_EXTRAS_TEST)"
	$(BIN)/pytest -q -m compose tests/compose

## Load the bundled dataset into the running system (start it with `make run` first).
load: venv
	$(BIN)/twitter-system load

## Compare every home timeline with what the dataset's follow graph implies.
check: venv
	$(BIN)/twitter-system check

## Benchmarks; results go to bench/RESULTS.md.
bench:
	@scripts/ensure-venv.sh "$(PYTHON_EXTRAS_TEST)"
	$(BIN)/python -m bench

## Back up the embedded databases into var/backups (keeps the newest TWITTER_BACKUP_KEEP).
backup: venv
	$(BIN)/twitter-system backup

## Restore the newest embedded backup, or BACKUP=<folder name or path> (stop `make run` first; afterwards start it and run `make rebuild-timelines`).
restore: venv
	$(BIN)/twitter-system restore $(if $(BACKUP),$(BACKUP),--latest)

## Regenerate every home timeline from the post and follow data (the system must be running).
rebuild-timelines: venv
	$(BIN)/twitter-system rebuild-timelines

clean:
	rm -rf $(VENV) .pytest_cache
