"""The benchmark harness: configs, driver, workers, report (see driver.py)."""
