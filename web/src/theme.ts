// The `theme` preference ("light" | "dark") really switches the UI; "system", or none, follows the system.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { api } from "./api/client";
import { ApiError } from "./api/errors";

export type Theme = "light" | "dark";
export const THEME_QUERY_KEY = ["preferences", "item", "theme"] as const;

function systemTheme(): Theme {
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function themeFromValue(value: unknown): Theme | null {
  if (value === "light" || value === "dark") return value;
  if (typeof value === "object" && value !== null) {
    const mode = (value as Record<string, unknown>)["mode"];
    if (mode === "light" || mode === "dark") return mode;
  }
  return null;
}

export function useTheme(): { theme: Theme; stored: boolean; setTheme: (t: Theme) => void; saving: boolean } {
  const client = useQueryClient();
  const query = useQuery({
    queryKey: THEME_QUERY_KEY,
    queryFn: async () => {
      // The list, not GET /api/preferences/theme: an unset theme is the usual case, and that
      // route answers it with a 404, which the browser logs as a console error on every load.
      try {
        const prefs = await api.get("/api/preferences");
        return themeFromValue(prefs.items.find((p) => p.key === "theme")?.value);
      } catch (e) {
        // No store, or it is down: the system's theme applies.
        if (e instanceof ApiError && e.status >= 400 && e.status < 600) return null;
        throw e;
      }
    },
    staleTime: 60_000,
    retry: false,
  });
  const mutation = useMutation({
    mutationFn: (t: Theme) => api.put("/api/preferences/{key}", { path: { key: "theme" }, body: t }),
    onMutate: (t: Theme) => client.setQueryData(THEME_QUERY_KEY, t),
    onSettled: () => client.invalidateQueries({ queryKey: ["preferences"] }),
  });
  const stored = query.data ?? null;
  const theme = stored ?? systemTheme();
  useEffect(() => {
    document.documentElement.dataset["theme"] = theme;
  }, [theme]);
  return { theme, stored: stored !== null, setTheme: (t) => mutation.mutate(t), saving: mutation.isPending };
}
