"""The Android device layer: adb device control (adbutils), the UI (uiautomator2), logcat and
artifacts, plus a double of the adb server for tests that run without an emulator."""
