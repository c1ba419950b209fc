"""A detector built on the device SDK, run as its own process by tests/test_device_sdk.py (which kills it):
makes test results S0001... up to a total, each through the SDK's outbox, then waits for every receipt.

    python -m tests.sdk_device HOST PORT CANTEEN DEVICE STATE_DIR TOTAL
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from shian_device import Device, DeviceConfig, DeviceKind


def result_fields(n: int) -> dict[str, object]:
    return {
        "sample_no": f"S{n:04d}",
        "sample_name": "小白菜",
        "food_category": "vegetable",
        "supplier": "晋城市绿源蔬菜配送有限公司",
        "batch_no": "B2026112501",
        "item_code": "pesticide.op_carbamate",
        "method": "enzyme_inhibition",
        "method_std": "GB/T 5009.199-2003",
        "value": 12.5,
        "unit": "%",
        "result": "pass",
        "operator": "王芳",
        "control_delta_a": 0.6,
    }


async def main(host: str, port: int, canteen: str, device_id: str, state: Path, total: int) -> None:
    config = DeviceConfig(canteen, DeviceKind.DETECTOR, device_id, host, port, state_dir=state, resend_after_s=2.0)
    async with Device(config) as device:
        while device.outbox.made < total:
            await device.send_test_result(**result_fields(device.outbox.made + 1))
            await asyncio.sleep(0.005)
        await device.drained()


if __name__ == "__main__":
    host, port, canteen, device_id, state, total = sys.argv[1:7]
    asyncio.run(main(host, int(port), canteen, device_id, Path(state), int(total)))
