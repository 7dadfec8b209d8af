import { useEffect } from "react";
import { useLocation } from "../router";
import { useTheme } from "../theme";
import { trackPageView } from "../usage";
import { SideNav } from "./SideNav";
import { TopBar } from "./TopBar";
import { OverviewPage } from "../pages/OverviewPage";
import { CatalogPage } from "../pages/CatalogPage";
import { ServingPage } from "../pages/ServingPage";
import { QueriesPage } from "../pages/QueriesPage";
import { GeniePage } from "../pages/GeniePage";
import { AssistantPage } from "../pages/AssistantPage";
import { PreferencesPage } from "../pages/PreferencesPage";
import { AdminPage } from "../pages/AdminPage";
import { NotFoundPage } from "../pages/NotFoundPage";

export type PageId = "overview" | "catalog" | "queries" | "genie" | "assistant" | "serving" | "preferences" | "admin" | "not-found";

function pageOf(first: string | undefined): PageId {
  switch (first) {
    case undefined:
      return "overview";
    case "catalog":
    case "queries":
    case "genie":
    case "assistant":
    case "serving":
    case "preferences":
    case "admin":
      return first;
    // A volume's files are part of the Unity Catalog browser.
    case "volumes":
      return "catalog";
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
      content =
        location.segments[0] === "volumes" ? (
          <CatalogPage segments={rest.slice(0, 2)} volume={rest[2]} search={location.search} />
        ) : (
          <CatalogPage segments={rest} search={location.search} />
        );
      break;
    case "queries":
      content = <QueriesPage name={rest[0]} />;
      break;
    case "genie":
      content = <GeniePage spaceId={rest[0]} />;
      break;
    case "assistant":
      content = <AssistantPage conversationId={rest[0]} />;
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
