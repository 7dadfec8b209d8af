// Inline SVG icons (bundled; no icon font or CDN).
export type IconName = "home" | "catalog" | "serving" | "prefs" | "admin" | "sun" | "moon" | "table" | "schema" | "search" | "user" | "query" | "volume" | "folder" | "file" | "genie" | "assistant";

const paths: Record<IconName, string> = {
  home: "M3 10.5 12 3l9 7.5V21h-6v-6H9v6H3z",
  catalog: "M4 4h16v4H4zM4 10h16v4H4zM4 16h16v4H4z",
  serving: "M13 2 4 14h7l-1 8 9-12h-7z",
  prefs: "M10 2h4l.6 2.6 2.3 1 2.3-1.4 2.8 2.8-1.4 2.3 1 2.3L24 12v0l-2.6.6-1 2.3 1.4 2.3-2.8 2.8-2.3-1.4-2.3 1L14 22h-4l-.6-2.6-2.3-1-2.3 1.4-2.8-2.8 1.4-2.3-1-2.3L0 12l2.6-.6 1-2.3L2.2 6.8 5 4l2.3 1.4 2.3-1zm2 6a4 4 0 1 0 0 8 4 4 0 0 0 0-8z",
  admin: "M4 20V10h3v10zm6 0V4h3v16zm6 0v-7h3v7z",
  sun: "M12 7a5 5 0 1 1 0 10 5 5 0 0 1 0-10zM11 0h2v4h-2zm0 20h2v4h-2zM0 11h4v2H0zm20 0h4v2h-4zM3.5 5 5 3.5 7.8 6.3 6.3 7.8zm12.7 12.7 1.5-1.5 2.8 2.8-1.5 1.5zM3.5 19l2.8-2.8 1.5 1.5L5 20.5zM16.2 6.3 19 3.5 20.5 5l-2.8 2.8z",
  moon: "M20 15.5A8.5 8.5 0 0 1 8.5 4 8.5 8.5 0 1 0 20 15.5z",
  table: "M3 4h18v16H3zm2 4v4h6V8zm8 0v4h6V8zm-8 6v4h6v-4zm8 0v4h6v-4z",
  schema: "M3 3h8v8H3zm10 0h8v8h-8zM3 13h8v8H3zm10 0h8v8h-8z",
  search: "M10 3a7 7 0 0 1 5.6 11.2l5.1 5.1-1.4 1.4-5.1-5.1A7 7 0 1 1 10 3zm0 2a5 5 0 1 0 0 10 5 5 0 0 0 0-10z",
  query: "M4 3h16v4H4zm0 6h10v2H4zm0 4h10v2H4zm0 4h7v2H4zm12-4.5 6 4.5-6 4.5z",
  volume: "M3 6c0-1.7 4-3 9-3s9 1.3 9 3v12c0 1.7-4 3-9 3s-9-1.3-9-3zm2 3.2V12c0 .6 2.8 2 7 2s7-1.4 7-2V9.2c-1.7.8-4.2 1.3-7 1.3s-5.3-.5-7-1.3z",
  folder: "M2 5h7l2 2h11v13H2z",
  assistant: "M4 3h16v12H9l-5 4z",
  genie: "M12 2l2.4 7.6L22 12l-7.6 2.4L12 22l-2.4-7.6L2 12l7.6-2.4zM19 1l.9 2.1L22 4l-2.1.9L19 7l-.9-2.1L16 4l2.1-.9z",
  file: "M5 2h9l5 5v15H5zm8 1.5V8h4.5z",
  user: "M12 3a4.5 4.5 0 1 1 0 9 4.5 4.5 0 0 1 0-9zm0 11c5 0 8 2.5 8 5v2H4v-2c0-2.5 3-5 8-5z",
};

export function Icon({ name, size = 18, label }: { name: IconName; size?: number; label?: string }) {
  return (
    <svg
      width={size}
      height={size}
      viewBox="0 0 24 24"
      fill="currentColor"
      role={label ? "img" : undefined}
      aria-hidden={label ? undefined : true}
      aria-label={label}
      focusable="false"
    >
      <path d={paths[name]} fillRule="evenodd" />
    </svg>
  );
}
