// The folded "Technical details" area: ids, codes and header names that support and developers
// need, kept out of the prominent text.
import type { ReactNode } from "react";

export function TechnicalDetails({ children }: { children: ReactNode }) {
  return (
    <details className="tech-details">
      <summary className="muted small">Technical details</summary>
      {children}
    </details>
  );
}
