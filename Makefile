# Entry points: `make cluster` builds the lab and the cluster on it; `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= $(CURDIR)/.venv
BIN := $(VENV)/bin
PYTHON ?= python3
export ETCDFLEET_LAB_DIR ?= $(CURDIR)/.lab
LAB_INVENTORY := $(ETCDFLEET_LAB_DIR)/inventory.yml
export PATH := $(BIN):$(PATH)
# Tools that install the collection into a cache (ansible-lint, molecule) find it linked there.
# Only this checkout counts as etcdfleet.cluster: no copy installed elsewhere on the machine.
export VIRTUAL_ENV := $(VENV)
export ANSIBLE_COLLECTIONS_PATH := $(VENV)/.ansible/collections
COLLECTION_LINK := $(VENV)/.ansible/collections/ansible_collections/etcdfleet/cluster
export ANSIBLE_NOCOLOR ?= $(if $(CI),1,)
export PY_COLORS ?= $(if $(CI),0,)
PLAYBOOK := $(BIN)/ansible-playbook
SANITY_ROOT := $(CURDIR)/build/sanity/ansible_collections/etcdfleet/cluster

.PHONY: help venv engine images lab lab-down cluster test lint sanity unit integration lab-tests \
        collection molecule molecule-v3 bench clean

help:
	@echo "make cluster    build the lab (3 nodes) and run playbooks/site.yml on it"
	@echo "make test       lint, sanity, unit, integration, lab, collection and molecule tests"
	@echo "make lab-down   remove the lab's nodes, network and volumes"
	@echo "make bench      every benchmark on a fresh lab, report in bench/RESULTS.md"

$(BIN)/.installed: requirements.txt requirements-dev.txt
	scripts/venv.sh "$(VENV)" "$(PYTHON)"
	touch $@

$(COLLECTION_LINK):
	mkdir -p "$(dir $@)" && ln -sfn "$(CURDIR)" "$@"

venv: $(BIN)/.installed $(COLLECTION_LINK)

# The Docker engine on this machine and the lab's images (built locally when missing).
images: venv
	$(PLAYBOOK) playbooks/lab.yml -e lab_state=images

engine: images

lab: venv
	$(PLAYBOOK) playbooks/lab.yml

lab-down: venv
	$(PLAYBOOK) playbooks/lab.yml -e lab_state=absent

cluster: lab
	$(PLAYBOOK) -i $(LAB_INVENTORY) playbooks/lab_ssh.yml
	$(PLAYBOOK) -i $(LAB_INVENTORY) playbooks/site.yml
	@scripts/cluster-info.sh "$(LAB_INVENTORY)"

test: venv
	scripts/test.sh

lint: venv
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	$(BIN)/antsibull-changelog lint

sanity: venv
	scripts/host-packages.sh shellcheck
	rm -rf "$(SANITY_ROOT)" && mkdir -p "$(SANITY_ROOT)"
	git ls-files -co --exclude-standard -z | grep -zv '^playbooks/collections' \
	  | xargs -0 cp --parents -P -t "$(SANITY_ROOT)"
	for v in 24_2 25_3; do f=$$HOME/.ansible/test/cache/get_pip_$$v.py; \
	  [ -f "$$f" ] || install -D -m 0644 tests/sanity/pip_bootstrap.py "$$f"; done
	cd "$(SANITY_ROOT)" && git init -q && git add -A && \
	  $(BIN)/ansible-test sanity --venv --python 3.11 --color no

unit: venv
	$(BIN)/pytest -q tests/unit

# In three processes: the tests mostly wait on etcd, Docker, HAProxy and timers, and each process
# has its own etcd (every test works below a prefix of its own, on containers named after it).
integration: images
	scripts/host-packages.sh etcd-server etcd-client haproxy iputils-ping iptables iproute2
	$(BIN)/pytest -q -n 3 --durations=15 tests/integration

# In three processes: each test starts node containers of its own and mostly waits on them.
lab-tests: images
	$(BIN)/pytest -q -n 3 tests/lab

collection: venv
	$(BIN)/pytest -q tests/collection

# The scenarios run side by side, each on nodes and a network of its own (scripts/molecule.sh;
# MOLECULE_SERIAL=1 runs them in turn); every one runs to its end, and the target fails when any
# did. `default` runs the workflow and every component's stories on one lab with the etcd v2 API,
# `etcd` the workflow with discovery and TLS on the v3 API and the day-2 stories. Each task's time
# is logged, and each run ends with the slowest.
MOLECULE_SCENARIOS := $(sort $(patsubst molecule/%/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))
molecule: export ANSIBLE_CALLBACKS_ENABLED = ansible.posix.profile_tasks
molecule: export PROFILE_TASKS_TASK_OUTPUT_LIMIT = 30
molecule: images
	scripts/molecule.sh $(or $(SCENARIO),$(MOLECULE_SCENARIOS))

# The default scenario (every story) with the etcd v3 API; not part of `make test`, whose etcd
# scenario runs the workflow, a node drained, removed and added again, and verify on v3.
molecule-v3: images
	ETCDFLEET_ETCD_API=v3 $(BIN)/molecule test -s default

# Every benchmark on a fresh lab, one report: bench/RESULTS.md.
bench: images
	scripts/host-packages.sh etcd-server etcd-client haproxy
	$(BIN)/python bench/run_all.py

clean:
	rm -rf build .ansible .pytest_cache
