"""Measuring the service from inside one process: what tests and benchmarks import, never a
function (importing anything here installs nothing until a counter is started)."""
