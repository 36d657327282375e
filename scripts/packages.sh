# The Debian packages of each job, sourced by scripts/setup.sh and scripts/test.sh.
# BUILD: the build and the main command (`minicpm generate` on the bundled model).
BUILD_PKGS=(build-essential cmake ninja-build pkg-config git
            libhwy-dev libsentencepiece-dev nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev
            libutf8proc-dev libxxhash-dev libedit-dev libcpp-httplib-dev libeigen3-dev
            libfasttext-dev libzstd-dev zlib1g-dev)
# TEST: what only the test suite needs on top: GoogleTest, Google Benchmark (bench/ is built with the
# tests), the ARM cross compiler (ArmCrossCompile), Debian's python3 + numpy (CUDA index emulators),
# OpenMPI's mpirun (`data clean` under mpirun -np 2; minicpm does not link MPI, it reads the rank
# from mpirun's environment, so libopenmpi-dev is not needed).
TEST_PKGS=(libgtest-dev libgmock-dev libbenchmark-dev g++-aarch64-linux-gnu python3 python3-numpy openmpi-bin)
# Best effort (their tests skip without them): Debian's Chromium for the web page test, clang for
# the libFuzzer targets.
TEST_OPTIONAL_PKGS=(chromium clang)
# REFERENCE: PyTorch, numpy and matplotlib for tools/reference (regenerating golden files) and
# tools/plot_loss.py (`scripts/setup.sh --reference`); neither the build nor the tests need them.
REFERENCE_PKGS=(python3 python3-numpy python3-torch python3-matplotlib)
# FUZZ: clang 14 and its libFuzzer / sanitizer runtimes for the fuzz targets (scripts/fuzz.sh).
FUZZ_PKGS=(clang-14 libclang-rt-14-dev python3)
