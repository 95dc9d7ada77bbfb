"""Root pytest configuration: nbval's kernels run the CPU kernels the committed outputs were made with.

It lives at the root (not in ``tests/``) so that ``pytest book/04_change_detection_oscd.ipynb``
alone gets it too. The pins are set in this process's environment before any kernel starts;
nbval's kernels inherit them (:data:`urbankit.profiles.CPU_KERNEL_PINS`), so a chapter re-run
gives the committed numbers on a CPU with AVX-512 as on one with only AVX2.
"""
from __future__ import annotations

from urbankit.profiles import pin_cpu_kernels

CPU_PINS_DIFFERING = pin_cpu_kernels()


def pytest_report_header(config):
    """Say whether nbval's kernels run the pinned CPU kernels (a kept other value may change outputs)."""
    if not CPU_PINS_DIFFERING:
        return "urbankit: nbval kernels run the pinned CPU kernels (urbankit.profiles.cpu_kernel_pins)"
    kept = ", ".join(f"{name}={kept} (pin {pin})" for name, (kept, pin) in CPU_PINS_DIFFERING.items())
    return f"urbankit: CPU-kernel pins overridden by the environment: {kept}; chapter outputs may differ"
