import { useTheme } from "../theme";
import { Icon } from "./Icon";

export function ThemeToggle() {
  const { theme, setTheme, saving } = useTheme();
  const next = theme === "dark" ? "light" : "dark";
  return (
    <button
      type="button"
      className="icon-button"
      onClick={() => setTheme(next)}
      disabled={saving}
      aria-label={`Switch to ${next} theme`}
      title={`Switch to ${next} theme (saved as your "theme" preference)`}
      data-track="theme-toggle"
    >
      <Icon name={theme === "dark" ? "sun" : "moon"} />
    </button>
  );
}
