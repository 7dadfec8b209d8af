import { Link } from "../components/Link";

export function NotFoundPage() {
  return (
    <div className="page">
      <header className="page-header">
        <h1>Page not found</h1>
      </header>
      <p>
        There is nothing here. <Link href="/">Back to the overview</Link>.
      </p>
    </div>
  );
}
