package ui

import (
	"fmt"
	"os/exec"
	"runtime"
)

// OpenBrowser asks the desktop to open url in the default browser.
func OpenBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("opening a browser: %w", err)
	}
	// The opener exits once it handed the URL over; reap it without waiting here.
	go func() { _ = cmd.Wait() }()
	return nil
}
