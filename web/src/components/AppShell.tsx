import { useEffect } from "react";
import { useLocation } from "../router";
import { useTheme } from "../theme";
import { trackPageView } from "../usage";
import { SideNav } from "./SideNav";
import { TopBar } from "./TopBar";
import { OverviewPage } from "../pages/OverviewPage";
import { CatalogPage } from "../pages/CatalogPage";
import { ServingPage } from "../pages/ServingPage";
import { PreferencesPage } from "../pages/PreferencesPage";
import { AdminPage } from "../pages/AdminPage";
import { NotFoundPage } from "../pages/NotFoundPage";

export type PageId = "overview" | "catalog" | "serving" | "preferences" | "admin" | "not-found";

function pageOf(first: string | undefined): PageId {
  switch (first) {
    case undefined:
      return "overview";
    case "catalog":
    case "serving":
    case "preferences":
    case "admin":
      return first;
    default:
      return "not-found";
  }
}

export function AppShell() {
  const location = useLocation();
  const page = pageOf(location.segments[0]);
  const rest = location.segments.slice(1);
  useTheme();

  useEffect(() => {
    trackPageView(page);
  }, [page]);

  let content;
  switch (page) {
    case "overview":
      content = <OverviewPage />;
      break;
    case "catalog":
      content = <CatalogPage segments={rest} search={location.search} />;
      break;
    case "serving":
      content = <ServingPage endpoint={rest[0]} />;
      break;
    case "preferences":
      content = <PreferencesPage />;
      break;
    case "admin":
      content = <AdminPage />;
      break;
    case "not-found":
      content = <NotFoundPage />;
      break;
  }

  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <TopBar />
      <div className="shell-body">
        <SideNav active={page} />
        <main id="main" className="content" tabIndex={-1} data-page={page}>
          {content}
        </main>
      </div>
    </div>
  );
}
