# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQS := $(wildcard requirements/*.txt) ros_ws/src/rl_deploy/setup.py

.PHONY: venv test lint typecheck unit demo clean sysdeps ros-build

venv: $(STAMP)

# System packages (Debian/Ubuntu): EGL/OSMesa for headless MuJoCo rendering, libsdformat and a
# C++ compiler for the SDF checker. Installs only what is missing; needs root or sudo.
SYSDEPS := libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 libsdformat-dev pkg-config g++ make
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
sysdeps:
	@dpkg -s $(SYSDEPS) >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	  $(SYSDEPS); }

# libsdformat validator of the generated Gazebo files (tests/sim call this target).
build/sdf_check: tests/sim/sdf_check.cc
	@mkdir -p build
	@pc=$$(pkg-config --list-all | awk '/^sdformat[0-9]+ /{print $$1}' | sort -V | tail -n1); \
	  test -n "$$pc" || { echo "libsdformat not found: run make sysdeps" >&2; exit 1; }; \
	  $(CXX) -std=c++17 -O1 -o $@ $< $$(pkg-config --cflags --libs $$pc)

$(STAMP): $(REQS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements/dev.txt
	$(BIN)/python -m pip install -q --no-deps -e ros_ws/src/rl_deploy
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests

test: lint typecheck unit

# A few closed-loop episodes of the example policy in the MuJoCo room through the whole stack
# (detector, policy, safety), recorded as bags and replayed with `rl-deploy replay`: the reports
# are demo_out/sim/report.html and demo_out/replay/*/report.html.
demo: sysdeps venv
	$(BIN)/rl-deploy demo --out demo_out

# colcon build of ros_ws into ros_ws/install (the DDS tests build their own copy in a temporary
# directory). Then: `. ros_ws/install/setup.sh` and start ros_ws/install/rl_deploy_ros/lib/
# rl_deploy_ros/<node>, or `ros2 run rl_deploy_ros <node>` where ros2cli is installed.
ros-build: venv
	cd ros_ws && ../$(BIN)/colcon build

clean:
	rm -rf $(VENV) demo_out build ros_ws/build ros_ws/install ros_ws/log
