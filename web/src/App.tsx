import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useEffect } from "react";
import { ApiError } from "./api/errors";
import { AppShell } from "./components/AppShell";
import { startUsageTracking } from "./usage";

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // Retry only failures worth retrying: never a 4xx, never a timeout the user waited for.
      retry: (count, error) =>
        count < 1 && error instanceof ApiError && (error.status === 502 || error.status === 503),
      refetchOnWindowFocus: false,
      staleTime: 15_000,
    },
  },
});

export function App() {
  useEffect(() => startUsageTracking(), []);
  return (
    <QueryClientProvider client={queryClient}>
      <AppShell />
    </QueryClientProvider>
  );
}
