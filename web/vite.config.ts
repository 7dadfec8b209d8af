import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The build is embedded in the dbapp binary (rust-embed), so it must be self-contained and
// reproducible: hashed assets under assets/, no source maps, nothing fetched at run time.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    assetsInlineLimit: 0,
  },
  server: {
    // `npm run dev` proxies the API to a running `dbapp dev --port 8000`.
    proxy: {
      "/api": "http://127.0.0.1:8000",
      "/_dev": "http://127.0.0.1:8000",
      "/health": "http://127.0.0.1:8000",
    },
  },
});
