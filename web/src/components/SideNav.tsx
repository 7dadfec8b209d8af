import type { PageId } from "./AppShell";
import { Icon, type IconName } from "./Icon";
import { Link } from "./Link";

const items: { id: PageId; href: string; label: string; icon: IconName }[] = [
  { id: "overview", href: "/", label: "Overview", icon: "home" },
  { id: "catalog", href: "/catalog", label: "Unity Catalog", icon: "catalog" },
  { id: "queries", href: "/queries", label: "Queries", icon: "query" },
  { id: "genie", href: "/genie", label: "Genie", icon: "genie" },
  { id: "assistant", href: "/assistant", label: "Assistant", icon: "assistant" },
  { id: "serving", href: "/serving", label: "Model Serving", icon: "serving" },
  { id: "preferences", href: "/preferences", label: "Preferences", icon: "prefs" },
  { id: "admin", href: "/admin", label: "Admin metrics", icon: "admin" },
];

export function SideNav({ active }: { active: PageId }) {
  return (
    <nav className="sidenav" aria-label="Main">
      <ul>
        {items.map((item) => (
          <li key={item.id}>
            <Link
              href={item.href}
              className={item.id === active ? "nav-link active" : "nav-link"}
              aria-current={item.id === active ? "page" : undefined}
              data-track={`nav-${item.id}`}
            >
              <Icon name={item.icon} />
              <span>{item.label}</span>
            </Link>
          </li>
        ))}
      </ul>
    </nav>
  );
}
