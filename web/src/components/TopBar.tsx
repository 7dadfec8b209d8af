import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";
import { DevUserSwitcher } from "./DevUserSwitcher";
import { Icon } from "./Icon";
import { Link } from "./Link";
import { ThemeToggle } from "./ThemeToggle";

export function TopBar() {
  const me = useQuery({ queryKey: ["me"], queryFn: () => api.get("/api/user/me") });
  return (
    <header className="topbar">
      <Link href="/" className="brand" aria-label="dbapp home">
        <svg width="22" height="22" viewBox="0 0 24 24" aria-hidden="true">
          <path d="M12 2 22 7.5 12 13 2 7.5z" fill="#FF3621" />
          <path d="M2 11.5 12 17l10-5.5V15l-10 5.5L2 15z" fill="#FF3621" opacity=".75" />
        </svg>
        <span>dbapp</span>
      </Link>
      <div className="topbar-spacer" />
      <DevUserSwitcher />
      <ThemeToggle />
      <div className="identity" aria-live="polite">
        <Icon name="user" />
        {me.isPending ? (
          <span className="muted">Signing in…</span>
        ) : me.isError ? (
          <span className="muted" title={me.error.message}>
            Not signed in
          </span>
        ) : (
          <span data-testid="identity">
            {me.data.display_name ?? me.data.user_id}
            <span className="muted identity-email">{me.data.email ?? me.data.user_id}</span>
          </span>
        )}
      </div>
    </header>
  );
}
