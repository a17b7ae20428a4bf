-- preview_wrk.lua: wrk fetches the sample site's three files in turn (preview_bench.sh puts
-- the snapshot id in place of SNAPSHOT). Headers given with -H go with every request.
local paths = {"/SNAPSHOT/index.html", "/SNAPSHOT/site.css", "/SNAPSHOT/app.js"}
local next_path = 0

request = function()
  next_path = next_path % #paths + 1
  return wrk.format("GET", paths[next_path])
end
